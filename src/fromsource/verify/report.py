"""Render a verification report as text, a rich table, JSON, YAML or CSV.

Pure functions from a :class:`Report` to a string (or, for the terminal, to
rich renderables).  The text form follows what users know from other tools:
``Artifact:``, ``Verification Coverage:``, ``Verified packages: N of M``, then
by default the packages not verified, the remediated ones and the known
vulnerabilities (with the versions that fix them), or with ``--detailed`` a
``Status:``/``Details:``/``Python package:`` block per package.  JSON and YAML carry ``schema_version`` and stable keys (see
``docs/verify.md``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from typing import Any

import yaml
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from fromsource.dist.names import normalize
from fromsource.provenance.agreement import Agreement
from fromsource.verify.model import PackageResult, Report, Status, VulnerabilityFinding

SCHEMA_VERSION = 1
FORMATS = ("text", "json", "yaml", "csv")

_STYLE = {
    Status.VERIFIED: "green",
    Status.VERIFIED_REMEDIATED: "green",
    Status.NOT_BUILT: "yellow",
    Status.MODIFIED: "red",
    Status.INVALID: "red bold",
    Status.UPSTREAM: "yellow",
    Status.REFUSED: "red bold",
}


def _package(result: PackageResult) -> str:
    return f"{result.name}=={result.version}" if result.version else result.name


def _percent(value: float) -> str:
    return f"{value:.2f}%"


_FOUND = {"environment": "distributions", "wheel": "wheels", "wheels": "wheels"}


def nothing_verified(report: Report) -> str | None:
    """Why *report* counts no package ("no distributions found in .venv/: ..."), else None.

    A report over nothing must never read as a pass: ``verify`` prints this
    and exits 1 unless ``--allow-empty`` asked for it.
    """
    if report.results:
        return None
    if report.excluded:
        return (f"every package found in {report.artifact} was excluded "
                f"({len(report.excluded)}): nothing was verified")
    found = _FOUND.get(report.artifact_type, "packages")
    return f"no {found} found in {report.artifact}: nothing was verified"


def header_lines(report: Report) -> list[str]:
    """The summary lines every text form starts with."""
    lines = [
        f"Artifact: {report.artifact}",
        f"Verification Coverage: {_percent(report.coverage)}",
        f"Verified packages: {report.verified} of {report.total}",
        f"Source: {report.source}",
    ]
    if report.advisories_source:
        lines.append(f"Advisories: {report.advisories_source}")
    used = report.keys_used
    if used:
        lines += [f"Signing key: {kid}" for kid in used]
    else:
        lines.append(f"Trusted keys: {', '.join(report.trusted_keys) or 'none'}")
    empty = nothing_verified(report)
    if empty:
        lines += ["", empty[0].upper() + empty[1:]]
    return lines


def _vuln_line(finding: VulnerabilityFinding) -> str:
    aliases = f" ({', '.join(finding.aliases)})" if finding.aliases else ""
    if finding.state == "fixed-by-patch":
        return f"{finding.id}{aliases}: fixed by an attested patch of this build"
    parts = []
    if finding.fixed_in:
        parts.append(f"fixed in {', '.join(finding.fixed_in)}")
    if finding.remediated_in:
        parts.append(f"remediated in {', '.join(finding.remediated_in)}")
    return f"{finding.id}{aliases}: {finding.summary}" + (f" [{'; '.join(parts)}]" if parts else "")


def _remediated_line(result: PackageResult) -> str:
    fixes = result.provenance.fixes if result.provenance else ()
    fixed = ", ".join(fixes) if fixes else "no listed advisories"
    return f"  {_package(result)}: attested patches fix {fixed}"


def _summary_lines(report: Report) -> list[str]:
    """The default text body: what is not verified, what is remediated, what is vulnerable."""
    lines: list[str] = []
    unverified = [r for r in report.results if not r.status.is_verified]
    if unverified:
        lines += ["", "Not verified:"]
        # A refused package carries the index's reason (the MAL id, the rule): shown here too.
        lines += [
            f"  {_package(r)}: {r.status.value}"
            + (f": {r.details}" if r.status is Status.REFUSED else "")
            for r in unverified
        ]
    remediated = [r for r in report.results if r.status is Status.VERIFIED_REMEDIATED]
    if remediated:
        lines += ["", "Remediated:"]
        lines += [_remediated_line(r) for r in remediated]
    # Advisories an attested patch fixes were named just above: list what still affects.
    affected = [(r, v) for r in report.results for v in r.vulnerabilities if v.state == "affected"]
    if affected:
        lines += ["", "Known vulnerabilities:"]
        lines += [f"  {_package(r)}: {_vuln_line(v)}" for r, v in affected]
    elif report.advisories_checked and report.results:
        lines += ["", "Known vulnerabilities: none"]
    return lines


def render_text(report: Report, detailed: bool = False) -> str:
    """The plain-text report (for pipes, files and ``NO_COLOR``-free terminals alike)."""
    lines = header_lines(report)
    if detailed:
        for result in report.results:
            lines += ["", f"Status: {result.status.value}", f"Details: {result.details}"]
            lines += [f"  {path}" for path in result.files]
            lines += [f"Vulnerability: {_vuln_line(v)}" for v in result.vulnerabilities]
            lines.append(f"Python package: {_package(result)}")
    else:
        lines += _summary_lines(report)
    if report.excluded:
        lines += ["", "Excluded:"]
        lines += [
            f"  {e.name}{'==' + e.version if e.version else ''}: {e.reason}" for e in report.excluded
        ]
    return "\n".join(lines) + "\n"


def render_rich(report: Report, detailed: bool = False) -> RenderableType:
    """The terminal form: the summary lines, then a table of packages (and of vulnerabilities)."""
    parts: list[RenderableType] = [Text("\n".join(header_lines(report)))]
    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("Package", "Version", "Status", "Details"):
        table.add_column(column, overflow="fold")
    for r in report.results:
        details = r.details
        if detailed and r.files:
            details += "\n" + "\n".join(r.files)
        table.add_row(r.name, r.version or "", Text(r.status.value, style=_STYLE[r.status]), details)
    parts.append(table)
    vulnerable = [(r, v) for r in report.results for v in r.vulnerabilities]
    if vulnerable:
        vt = Table(title="Known vulnerabilities", show_header=True, header_style="bold")
        for column in ("Package", "Advisory", "State", "Fixed in", "Remediated in"):
            vt.add_column(column, overflow="fold")
        for r, v in vulnerable:
            ident = v.id + (f" ({', '.join(v.aliases)})" if v.aliases else "")
            vt.add_row(_package(r), ident, v.state, ", ".join(v.fixed_in),
                       ", ".join(v.remediated_in))
        parts.append(vt)
    if report.excluded:
        parts.append(Text("Excluded: " + ", ".join(f"{e.name} ({e.reason})" for e in report.excluded)))
    return Group(*parts)


def _agreement_json(agreement: Agreement | None) -> dict[str, Any] | None:
    """The independent builds of a verified wheel, for the JSON report (null: one build)."""
    if agreement is None:
        return None
    return {
        "required": agreement.required,
        "agreed": agreement.agreed,
        "builds": [b.invocation_id for b in agreement.builds],
        "override": agreement.override is not None,
        "summary": agreement.summary(workers=False),
    }


def _result_json(r: PackageResult) -> dict[str, Any]:
    prov = r.provenance
    return {
        "name": r.name,
        "version": r.version,
        "purl": f"pkg:pypi/{normalize(r.name)}@{r.version}" if r.version else None,
        "status": r.status.value,
        "verified": r.status.is_verified,
        "coverage_percentage": r.coverage,
        "details": r.details,
        "location": r.location,
        "files": list(r.files),
        "installer_files": list(r.installer_files),
        "checked_files": r.checked,
        "matched_files": r.matched,
        "provenance": None if prov is None else {
            "subject": prov.subject,
            "subject_sha256": prov.subject_sha256,
            "repository": prov.repository,
            "build_id": prov.build_id,
            "sdist_url": prov.sdist_url,
            "sdist_sha256": prov.sdist_sha256,
            "keyid": prov.keyid,
            "patches": list(prov.patches),
            "fixes": list(prov.fixes),
            "agreement": _agreement_json(prov.agreement),
        },
        "served": None
        if r.served is None
        else {
            "filename": r.served.filename,
            "sha256": r.served.sha256,
            "repository": r.served.repository,
            "policy_generation": r.served.policy_generation,
        },
        "vulnerabilities": [
            {
                "id": v.id,
                "aliases": list(v.aliases),
                "summary": v.summary,
                "state": v.state,
                "fixed_in": list(v.fixed_in),
                "remediated_in": list(v.remediated_in),
            }
            for v in r.vulnerabilities
        ],
    }


def to_document(report: Report) -> dict[str, Any]:
    """The report as a JSON-ready mapping (schema ``SCHEMA_VERSION``, documented in docs/verify.md)."""
    partially = sum(1 for r in report.results if r.status is Status.MODIFIED and r.matched)
    counts = {s.value: 0 for s in Status}
    for r in report.results:
        counts[r.status.value] += 1
    return {
        "schema_version": SCHEMA_VERSION,
        "artifact": report.artifact,
        "artifact_type": report.artifact_type,
        "source": report.source,
        "coverage_percentage": report.coverage,
        "verified": report.verified,
        "total": report.total,
        "summary": {
            "fully_verified": report.verified,
            "partially_verified": partially,
            "not_verified": report.total - report.verified - partially,
        },
        "statuses": counts,
        "keys": {"trusted": list(report.trusted_keys), "used": list(report.keys_used)},
        "vulnerabilities_checked": report.advisories_checked,
        "advisories_source": report.advisories_source,
        "results": [_result_json(r) for r in report.results],
        "excluded": [
            {"name": e.name, "version": e.version, "reason": e.reason} for e in report.excluded
        ],
        "warnings": list(report.warnings),
    }


def render_json(report: Report) -> str:
    """The JSON report (indented, keys in a stable order)."""
    return json.dumps(to_document(report), indent=2) + "\n"


def render_yaml(report: Report) -> str:
    """The same document as :func:`render_json`, in YAML."""
    return str(yaml.safe_dump(to_document(report), sort_keys=False, allow_unicode=True))


CSV_COLUMNS = (
    "name", "version", "status", "coverage_percentage", "repository", "build_id",
    "sdist_sha256", "keyid", "files", "vulnerabilities", "details",
)


def _csv_rows(report: Report) -> Iterable[list[str]]:
    yield list(CSV_COLUMNS)
    for r in report.results:
        prov = r.provenance
        yield [
            r.name, r.version or "", r.status.value, f"{r.coverage:.2f}",
            prov.repository if prov else r.served.repository if r.served else "",
            prov.build_id if prov else "",
            prov.sdist_sha256 if prov else "", prov.keyid if prov else "",
            ";".join(r.files),
            ";".join(v.id for v in r.vulnerabilities if v.state == "affected"),
            r.details,
        ]


def render_csv(report: Report) -> str:
    """One row per package with the columns of ``CSV_COLUMNS``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows(_csv_rows(report))
    return out.getvalue()


def render(report: Report, fmt: str, detailed: bool = False) -> str:
    """The report in *fmt* (one of ``FORMATS``) as a string."""
    if fmt == "json":
        return render_json(report)
    if fmt == "yaml":
        return render_yaml(report)
    if fmt == "csv":
        return render_csv(report)
    return render_text(report, detailed)
