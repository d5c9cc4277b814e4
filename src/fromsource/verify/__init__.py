"""Client-side verification: which packages of an environment, wheel set or lock file
were provably built from source by a fromsource index.

``inputs`` (and, for lock files, ``fromsource.lockfiles``) read the artifact,
``fetch`` gets attestations (index or offline folder; credentials come from
:mod:`fromsource.indexclient`), ``decide`` compares (pure), ``vulns`` adds advisories,
``report`` renders, ``run`` ties them together.
"""

from fromsource.verify.fetch import AttestationSource, IndexSource, OfflineSource, load_keys
from fromsource.verify.model import PackageResult, Report, Status
from fromsource.verify.report import render, to_document
from fromsource.verify.run import Options, verify_artifact

__all__ = [
    "AttestationSource",
    "IndexSource",
    "OfflineSource",
    "Options",
    "PackageResult",
    "Report",
    "Status",
    "load_keys",
    "render",
    "to_document",
    "verify_artifact",
]
