"""Give a built wheel a local version label (``X.Y.Z`` → ``X.Y.Z+fs.N``).

Remediated builds carry ``+fs.N`` (DESIGN.md "Repositories").  Backends
take their version from the sources in many ways, so instead of patching
those, the wheel the backend built is relabelled: the ``.dist-info`` and
``.data`` folders are renamed, ``Version:`` in METADATA is rewritten and the
file gets its new name.  RECORD is regenerated afterwards by
:func:`fromsource.build.normalize.normalize_wheel`.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from packaging.utils import parse_wheel_filename
from packaging.version import Version

from fromsource.bounded import DEFAULT_LIMITS, Budget, OutputLimits, read_member
from fromsource.dist.distinfo import find_dist_info
from fromsource.errors import InvalidDistributionError

__all__ = ["relabel_wheel", "with_local"]

_CHUNK = 1 << 20
_VERSION_LINE = re.compile(rb"^Version:[ \t]*[^\r\n]*", re.MULTILINE)


def with_local(version: str, label: str) -> str:
    """``version+label`` (a leading ``+`` on *label* is accepted); the result is PEP 440."""
    result = Version(f"{Version(version).public}+{label.lstrip('+')}")
    return str(result)


def relabel_wheel(
    wheel: Path, label: str, out_dir: Path, limits: OutputLimits = DEFAULT_LIMITS
) -> Path:
    """Write a copy of *wheel* whose version carries the local *label*; return it.

    Members are streamed (only METADATA, within *limits*, is held in memory).
    Raises InvalidDistributionError when the wheel has no single
    ``.dist-info`` folder or no METADATA; OversizedError when METADATA or
    all members together are over their caps.
    """
    version = parse_wheel_filename(wheel.name)[1]
    new_version = with_local(str(version), label)
    stem, _old_version, rest = wheel.name.split("-", 2)
    new_prefix = f"{stem}-{new_version}"
    rest = "-" + rest
    target = out_dir / f"{new_prefix}{rest}"
    out_dir.mkdir(parents=True, exist_ok=True)
    budget = Budget(limits.wheel_bytes, f"{wheel.name} decompressed")
    with zipfile.ZipFile(wheel) as source:
        names = source.namelist()
        info_dir = find_dist_info(wheel.name, names)
        data_dir = info_dir[: -len(".dist-info")] + ".data"
        new_info = f"{new_prefix}.dist-info"
        new_data = f"{new_prefix}.data"
        metadata = f"{info_dir}/METADATA"
        if metadata not in names:
            raise InvalidDistributionError(f"{wheel.name}: no {metadata}", filename=wheel.name)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
            for item in source.infolist():
                member = item.filename
                if member.startswith(info_dir + "/"):
                    member = new_info + member[len(info_dir) :]
                elif member.startswith(data_dir + "/"):
                    member = new_data + member[len(data_dir) :]
                copy = zipfile.ZipInfo(member, item.date_time)
                copy.external_attr = item.external_attr
                copy.compress_type = zipfile.ZIP_DEFLATED
                copy.file_size = item.file_size  # decides ZIP64 up front
                if item.is_dir():
                    out.writestr(copy, b"")
                    continue
                if item.filename == metadata:
                    data = read_member(
                        source, item, limits.metadata_bytes, what=f"{wheel.name}: {metadata}"
                    )
                    budget.spend(len(data))
                    data = _VERSION_LINE.sub(b"Version: " + new_version.encode(), data, count=1)
                    copy.file_size = len(data)
                    out.writestr(copy, data)
                    continue
                with source.open(item) as reader, out.open(copy, "w") as writer:
                    while chunk := reader.read(_CHUNK):
                        budget.spend(len(chunk))
                        writer.write(chunk)
    return target
