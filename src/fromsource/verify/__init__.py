"""Client-side verification: which packages of an environment, wheel set or lock file
were provably built from source by a fromsource index.

``inputs`` (and, for lock files, ``fromsource.lockfiles``) read the artifact,
``fetch`` gets attestations (index or offline folder), ``decide`` compares (pure), ``vulns`` adds advisories,
``report`` renders, ``run`` ties them together.
"""

from fromsource.verify.fetch import (
    AttestationSource,
    Credentials,
    IndexSource,
    OfflineSource,
    load_keys,
    resolve_credentials,
)
from fromsource.verify.model import PackageResult, Report, Status
from fromsource.verify.report import render, to_document
from fromsource.verify.run import Options, verify_artifact

__all__ = [
    "AttestationSource",
    "Credentials",
    "IndexSource",
    "OfflineSource",
    "Options",
    "PackageResult",
    "Report",
    "Status",
    "load_keys",
    "render",
    "resolve_credentials",
    "to_document",
    "verify_artifact",
]
