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

from fromsource.errors import InvalidDistributionError

__all__ = ["relabel_wheel", "with_local"]

_VERSION_LINE = re.compile(rb"^Version:[ \t]*[^\r\n]*", re.MULTILINE)


def with_local(version: str, label: str) -> str:
    """``version+label`` (a leading ``+`` on *label* is accepted); the result is PEP 440."""
    result = Version(f"{Version(version).public}+{label.lstrip('+')}")
    return str(result)


def relabel_wheel(wheel: Path, label: str, out_dir: Path) -> Path:
    """Write a copy of *wheel* whose version carries the local *label*; return it.

    Raises InvalidDistributionError when the wheel has no single
    ``.dist-info`` folder or no METADATA.
    """
    version = parse_wheel_filename(wheel.name)[1]
    new_version = with_local(str(version), label)
    stem, _old_version, rest = wheel.name.split("-", 2)
    new_prefix = f"{stem}-{new_version}"
    rest = "-" + rest
    target = out_dir / f"{new_prefix}{rest}"
    out_dir.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as source:
        names = source.namelist()
        info_dirs = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
        if len(info_dirs) != 1:
            raise InvalidDistributionError(
                f"{wheel.name}: expected one .dist-info folder, found {sorted(info_dirs)}",
                filename=wheel.name,
            )
        info_dir = info_dirs.pop()
        data_dir = info_dir[: -len(".dist-info")] + ".data"
        new_info = f"{new_prefix}.dist-info"
        new_data = f"{new_prefix}.data"
        metadata = f"{info_dir}/METADATA"
        if metadata not in names:
            raise InvalidDistributionError(f"{wheel.name}: no {metadata}", filename=wheel.name)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
            for item in source.infolist():
                data = source.read(item)
                member = item.filename
                if member == metadata:
                    data = _VERSION_LINE.sub(b"Version: " + new_version.encode(), data, count=1)
                if member.startswith(info_dir + "/"):
                    member = new_info + member[len(info_dir) :]
                elif member.startswith(data_dir + "/"):
                    member = new_data + member[len(data_dir) :]
                copy = zipfile.ZipInfo(member, item.date_time)
                copy.external_attr = item.external_attr
                copy.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(copy, data)
    return target
