"""Database models and migrations, blob storage, publishing and read queries."""

from fromsource.store.blobs import BlobStore, FileBlobStore, open_blob_store, sha256_file
from fromsource.store.catalog import FileInfo, find_file, list_projects, project_files
from fromsource.store.db import Database, open_database
from fromsource.store.publish import Published, publish_file, read_wheel_metadata

__all__ = [
    "BlobStore",
    "Database",
    "FileBlobStore",
    "FileInfo",
    "Published",
    "find_file",
    "list_projects",
    "open_blob_store",
    "open_database",
    "project_files",
    "publish_file",
    "read_wheel_metadata",
    "sha256_file",
]
