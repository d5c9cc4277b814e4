"""Test packages made on the spot: wheels written directly with zipfile.

These are valid wheels (METADATA, WHEEL, RECORD with sha256) so real pip and
uv install them, and the whole core suite runs offline.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(
    dest: Path,
    name: str,
    version: str,
    *,
    files: Mapping[str, str | bytes] | None = None,
    requires_python: str | None = None,
    requires_dist: Sequence[str] = (),
    tag: str = "py3-none-any",
    console_scripts: Mapping[str, str] | None = None,
) -> Path:
    """Write ``<name>-<version>-<tag>.whl`` into *dest* and return its path."""
    dist = name.replace("-", "_").replace(".", "_")
    module = dist.lower()
    files = dict(files) if files is not None else {
        f"{module}/__init__.py": f'__version__ = "{version}"\n'
    }
    info = f"{dist}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    if requires_python:
        meta.append(f"Requires-Python: {requires_python}")
    meta += [f"Requires-Dist: {r}" for r in requires_dist]
    contents: dict[str, bytes] = {
        k: v.encode() if isinstance(v, str) else v for k, v in files.items()
    }
    contents[f"{info}/METADATA"] = ("\n".join(meta) + "\n\n").encode()
    contents[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: fromsource-tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
    ).encode()
    if console_scripts:
        lines = ["[console_scripts]"] + [f"{k} = {v}" for k, v in console_scripts.items()]
        contents[f"{info}/entry_points.txt"] = ("\n".join(lines) + "\n").encode()
    record = [f"{path},{_record_hash(data)},{len(data)}" for path, data in contents.items()]
    record.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in contents.items():
            archive.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), data)
    return path


_EOCD64_SIZE = 56


def declared_zip64(path: Path, members: int, directory: int) -> Path:
    """A 98-byte file whose zip64 end records declare *members* members in a *directory*-byte
    central directory (that is not there): what a hostile wheel's tail can claim."""
    record = (
        b"PK\x06\x06"
        + _EOCD64_SIZE.to_bytes(8, "little")
        + (45).to_bytes(2, "little") * 2
        + bytes(8)
        + members.to_bytes(8, "little") * 2
        + directory.to_bytes(8, "little")
        + bytes(8)
    )
    locator = b"PK\x06\x07" + bytes(4) + (0).to_bytes(8, "little") + (1).to_bytes(4, "little")
    end = b"PK\x05\x06" + bytes(4) + b"\xff\xff" * 2 + b"\xff" * 8 + bytes(2)
    path.write_bytes(record + locator + end)
    return path
