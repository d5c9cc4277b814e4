"""Benchmark: build the whole corpus through the real pipeline, twice, and compare.

For every ``name==version`` of the corpus list (default
``../shared/corpus/public.txt`` next to the repository), over one data dir
(a temporary one unless ``--data-dir`` is given), with the upstream index of
the settings (``FROMSOURCE_UPSTREAM``, else pip's):

1. **build**: :func:`fromsource.build.build_many` builds and publishes every
   release in the no-network sandbox (``--jobs`` at a time);
2. **rebuild**: :func:`fromsource.build.rebuild_check` builds each built
   release again from another, differently long host path with the pinned
   build dependencies, and compares the wheel bit for bit with the
   published one (and lists the members that differ);
3. **second run**: ``build_many`` over the whole list again, same data dir:
   it must do no build work (every release skipped, no sandboxed build).

Prints a table per package (status, kind pure/extension, seconds,
reproducible, failure category and reason) and the totals, writes the JSON
results to ``bench/results/corpus-<time>.json`` and, with ``--readme``,
appends a dated section to ``bench/README.md``.

With ``--agree 2`` it measures what publishing only what two independent
builds agree on costs (issue 17) instead of the rebuild pass: the list is
built with ``agree`` 2 (two builds per wheel, published only when they made
the same bytes) into one fresh data dir, then with ``agree`` 1 into another,
at the same ``--jobs``; it reports both wall times, their ratio, how many
built releases were published, and which were ``irreproducible``.  The
agreement pass runs first: caches outside the data dirs (the operating
system's, the upstream's) then favour the pass without agreement, so the
ratio errs on the high side (``--agree-last`` swaps them).

Usage::

    .venv/bin/python bench/corpus_bench.py [--jobs 2] [--list FILE] [--data-dir DIR]
        [--only NAME ...] [--agree 2] [--readme]

Needs the upstream index (network for the host-side fetch and resolution;
the builds themselves run with no network) and bubblewrap.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import parse_wheel_filename

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LIST = ROOT.parent / "shared" / "corpus" / "public.txt"
RESULTS = ROOT / "bench" / "results"
README = ROOT / "bench" / "README.md"

from fromsource.build import BuildContext, build_many
from fromsource.build.matrix import overall, release_targets
from fromsource.build.outcome import BuildOutcome, ProgressEvent, RebuildReport
from fromsource.build.rebuild import rebuild_matrix
from fromsource.build.release import published_wheels
from fromsource.build.sandbox import SandboxLimits
from fromsource.build.targets import assign_wheels, wheel_kind
from fromsource.config import Settings
from fromsource.dist.names import normalize
from fromsource.errors import FromsourceError

RUST_CATEGORIES = (
    "crates-unavailable",
    "unlocked-crates",
    "crate-checksum-mismatch",
    "rust-toolchain-unavailable",
    "needs-rust",
)
"""Failures of Rust builds (docs/building.md "Rust"): a crate missing from every crate
source is ``crates-unavailable: NAME VERSION``, never a generic failure."""


@dataclass
class Row:
    """Everything measured for one corpus entry."""

    requirement: str
    project: str
    version: str
    status: str = "missing"
    kind: str = "-"
    wheel: str | None = None
    seconds: float | None = None
    category: str | None = None
    reason: str = ""
    build_id: int | None = None
    reproducible: bool | None = None
    rebuild_seconds: float | None = None
    differing: list[str] = field(default_factory=list)
    rebuild_error: str = ""
    second_status: str | None = None
    second_built: bool = False
    builds: list[dict[str, object]] = field(default_factory=list)
    """Every build of the release in the first pass: target, status, wheel, category, seconds."""
    supported: list[str] = field(default_factory=list)
    """The targets (names such as ``3.12``) its Requires-Python admits."""
    served: dict[str, str | None] = field(default_factory=dict)
    """Per target name: the published wheel that target installs (None: none)."""
    identical: dict[str, bool | None] = field(default_factory=dict)
    """Per published wheel: bit-for-bit identical when built again elsewhere (None: failed)."""
    agree_status: str | None = None
    agree_category: str | None = None
    agree_seconds: float | None = None
    agree_published: bool = False
    agree_reason: str = ""

    def to_json(self) -> dict[str, object]:
        return dict(self.__dict__)


def read_list(path: Path) -> list[str]:
    """The requirements of a corpus list (one per line, ``#`` comments allowed)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def kind_of(wheel: str | None) -> str:
    """``pure``, ``abi3`` or ``extension`` for a wheel (``-`` without a wheel)."""
    return wheel_kind(parse_wheel_filename(wheel)[3]) if wheel else "-"


def key_of(project: str, version: str) -> tuple[str, str]:
    return normalize(project), str(version)


class Printer:
    """One stderr line per finished build (builds run on threads)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.start = time.monotonic()

    def say(self, text: str) -> None:
        with self.lock:
            print(f"[{time.monotonic() - self.start:7.1f} s] {text}", file=sys.stderr, flush=True)

    def __call__(self, event: ProgressEvent) -> None:
        if event.step == "":
            first = event.message.splitlines()[0] if event.message else ""
            self.say(f"{event.project} {event.version}: {event.state} {first[:160]}")


def first_pass(
    ctx: BuildContext, rows: dict[tuple[str, str], Row], jobs: int, out: Printer
) -> float:
    """Build the list for every target; each row gets its release's builds and outcome."""
    start = time.monotonic()
    outcomes = build_many(ctx, [r.requirement for r in rows.values()], jobs=jobs, progress=out)
    seconds = time.monotonic() - start
    by_release: dict[tuple[str, str], list[BuildOutcome]] = {}
    for outcome in outcomes:
        by_release.setdefault(key_of(outcome.project, outcome.version), []).append(outcome)
    for key, found in by_release.items():
        row = rows.get(key)
        if row is None:
            continue
        release = overall(found)
        row.status = release.status
        row.wheel = next((o.wheel for o in found if o.wheel), None)
        row.kind = kind_of(row.wheel)
        row.seconds = sum(o.seconds for o in found)
        row.category = release.category
        row.reason = release.message if release.status == "failed" else ""
        row.build_id = release.build_id
        row.builds = [
            {
                "target": o.target,
                "status": o.status,
                "wheel": o.wheel,
                "category": o.category,
                "seconds": round(o.seconds, 1),
                "built": _built(o),
            }
            for o in found
        ]
    return seconds


def _built(outcome: BuildOutcome) -> bool:
    """Whether *outcome* did build work (a sandboxed build step ran)."""
    return any(step == "build" for step, _ in outcome.step_seconds)


def serve_pass(ctx: BuildContext, rows: dict[tuple[str, str], Row]) -> None:
    """Per target: which targets each release admits, and the published wheel each installs."""
    targets = ctx.build_targets()
    names = {t.tag: t.name for t in targets}
    for row in rows.values():
        try:
            row.supported = [t.name for t in release_targets(ctx, row.project, row.version, targets)]
        except FromsourceError:
            row.supported = [t.name for t in targets]  # no sdist...: the build said why
        wheels = [f.filename for f in published_wheels(ctx.db, "python", row.project, row.version)]
        served = assign_wheels(targets, wheels)
        row.served = {names[tag]: wheel for tag, wheel in served.items()}


def agree_pass(
    ctx: BuildContext, rows: dict[tuple[str, str], Row], jobs: int, out: Printer
) -> float:
    """Build the list with two independent builds per wheel (``ctx.agree`` 2)."""
    start = time.monotonic()
    outcomes = build_many(ctx, [r.requirement for r in rows.values()], jobs=jobs, progress=out)
    for outcome in outcomes:
        row = rows.get(key_of(outcome.project, outcome.version))
        if row is None:
            continue
        row.agree_status = outcome.status
        row.agree_category = outcome.category
        row.agree_seconds = outcome.seconds
        row.agree_published = outcome.file_id is not None
        row.agree_reason = outcome.message if outcome.status == "failed" else ""
    return time.monotonic() - start


def agreement_totals(rows: Sequence[Row], times: dict[str, float], jobs: int) -> dict[str, object]:
    """What agreement cost and what it published (``--agree 2``)."""
    built = [r for r in rows if r.status in ("succeeded", "skipped")]
    published = [r for r in built if r.agree_published]
    with_, without = times["agree"], times["build"]
    return {
        "jobs": jobs,
        "seconds_without": round(without, 1),
        "seconds_with": round(with_, 1),
        "ratio": round(with_ / without, 2) if without else None,
        "built_without": len(built),
        "published_with": len(published),
        "published_share": round(100 * len(published) / len(built), 1) if built else None,
        "irreproducible": [r.project for r in rows if r.agree_category == "irreproducible"],
        "other_failures": [
            [r.project, r.agree_category]
            for r in rows
            if r.agree_status == "failed" and r.agree_category != "irreproducible"
        ],
    }


def agreement_text(a: dict[str, object]) -> str:
    """The agreement totals as Markdown bullets."""
    irreproducible = a["irreproducible"]
    assert isinstance(irreproducible, list)
    wall = (
        f"- wall time at --jobs {a['jobs']}: {a['seconds_with']} s with agreement (two "
        f"independent builds per wheel), {a['seconds_without']} s without: **{a['ratio']} x**"
    )
    published = (
        f"- published with agreement: {a['published_with']} of the {a['built_without']} "
        f"releases built without it ({a['published_share']} %); irreproducible: "
        f"{', '.join(map(str, irreproducible)) or 'none'}"
        + (f"; other failures: {a['other_failures']}" if a["other_failures"] else "")
    )
    return f"{wall}\n{published}"


def agreement_table(rows: Sequence[Row]) -> str:
    """Per package: seconds without and with agreement, and whether it was published."""
    lines = [
        "| package | version | kind | seconds (1 build) | seconds (deciding build) | published |",
        "| --- | --- | --- | ---: | ---: | --- |",
    ]
    for r in sorted(rows, key=lambda r: r.project):
        verdict = "yes" if r.agree_published else f"NO: {r.agree_category}"
        lines.append(
            f"| {r.project} | {r.version} | {r.kind} | {r.seconds or 0:.1f} | "
            f"{r.agree_seconds or 0:.1f} | {verdict} |"
        )
    return "\n".join(lines)


def rebuild_pass(
    ctx: BuildContext, rows: dict[tuple[str, str], Row], jobs: int, out: Printer
) -> float:
    """Build every published wheel again from another host path and compare (per target)."""
    start = time.monotonic()
    built = [r for r in rows.values() if any(r.served.values())]

    def check(row: Row) -> None:
        try:
            reports: list[RebuildReport] = rebuild_matrix(ctx, f"{row.project}=={row.version}")
        except FromsourceError as exc:
            row.reproducible = None
            row.rebuild_error = exc.message
            out.say(f"{row.project} {row.version}: rebuild FAILED {exc.message[:160]}")
            return
        for report in reports:
            row.identical[report.wheel or report.reference] = report.identical
            row.differing += [
                *report.differing, *report.only_in_reference, *report.only_in_rebuild
            ]
        row.reproducible = all(r.identical for r in reports) if reports else None
        row.rebuild_seconds = sum(r.seconds for r in reports)
        verdict = "identical" if row.reproducible else f"DIFFERENT {row.differing[:5]}"
        out.say(
            f"{row.project} {row.version}: {len(reports)} wheel(s) rebuilt, {verdict} "
            f"({row.rebuild_seconds:.1f} s)"
        )

    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="rebuild") as pool:
        list(pool.map(check, built))
    return time.monotonic() - start


def second_pass(
    ctx: BuildContext, rows: dict[tuple[str, str], Row], jobs: int, out: Printer
) -> float:
    start = time.monotonic()
    outcomes: list[BuildOutcome] = build_many(
        ctx, [r.requirement for r in rows.values()], jobs=jobs
    )
    seconds = time.monotonic() - start
    for outcome in outcomes:
        row = rows.get(key_of(outcome.project, outcome.version))
        if row is None:
            continue
        row.second_status = outcome.status
        # Build work: a sandboxed build step ran (not just the lookups before it).
        row.second_built = row.second_built or _built(outcome)
    return seconds


def totals(rows: Sequence[Row], times: dict[str, float]) -> dict[str, object]:
    built = [r for r in rows if r.status in ("succeeded", "skipped")]
    failed = [r for r in rows if r.status not in ("succeeded", "skipped")]
    rust = [r for r in failed if r.category in RUST_CATEGORIES]
    summary: dict[str, object] = {
        "total": len(rows),
        "built": len(built),
        "failed": len(failed),
        "failed_rust": {c: n for c in RUST_CATEGORIES if (n := _count(rust, c))},
        "failed_other": len(failed) - len(rust),
        "failed_without_reason": sum(1 for r in failed if not (r.category and r.reason)),
        "reproducible": sum(1 for r in built if r.reproducible),
        "rebuild_failed": sum(1 for r in built if r.reproducible is None),
    }
    for kind in ("pure", "extension"):
        of_kind = [r for r in built if r.kind == kind]
        times_of = [r.seconds for r in of_kind if r.seconds is not None]
        summary[kind] = {
            "built": len(of_kind),
            "reproducible": sum(1 for r in of_kind if r.reproducible),
            "median_seconds": round(statistics.median(times_of), 1) if times_of else None,
        }
    timed = sorted((r for r in built if r.seconds is not None), key=lambda r: -(r.seconds or 0))
    summary["median_seconds"] = (
        round(statistics.median(r.seconds for r in timed if r.seconds is not None), 1)
        if timed
        else None
    )
    summary["slowest"] = [[r.project, round(r.seconds or 0, 1)] for r in timed[:3]]
    summary["second_run"] = {
        "seconds": round(times["second"], 2),
        "skipped": sum(1 for r in rows if r.second_status == "skipped"),
        "not_retried_failures": sum(
            1 for r in rows if r.second_status == "failed" and not r.second_built
        ),
        "builds": sum(1 for r in rows if r.second_built),
    }
    summary["phase_seconds"] = {k: round(v, 1) for k, v in times.items()}
    pure = [r for r in built if r.kind == "pure"]
    summary["pure_builds"] = {
        "releases": len(pure),
        "built_once": sum(1 for r in pure if sum(1 for b in r.builds if b["built"]) == 1),
        "builds": sum(1 for r in pure for b in r.builds if b["built"]),
    }
    return summary


def per_target(rows: Sequence[Row], names: Sequence[str]) -> dict[str, dict[str, int]]:
    """Per target name: what its Requires-Python admits, what is served, how, and how well.

    ``needs_crates``: releases that failed for want of the Rust crate registry
    (the issue's targets exclude them); ``built``: releases with a published
    wheel this target installs; ``manylinux``: of those with a platform
    wheel, how many are tagged manylinux; ``reproducible``: served wheels
    built bit for bit again elsewhere.
    """
    result: dict[str, dict[str, int]] = {}
    for name in names:
        admitted = [r for r in rows if name in r.supported]
        served = [r for r in admitted if r.served.get(name)]
        wheels = [str(r.served[name]) for r in served]
        platform_wheels = [w for w in wheels if kind_of(w) != "pure"]
        result[name] = {
            "admitted": len(admitted),
            "needs_crates": sum(
                1 for r in admitted if r not in served and r.category in RUST_CATEGORIES
            ),
            "built": len(served),
            "platform_wheels": len(platform_wheels),
            "manylinux": sum(1 for w in platform_wheels if "manylinux" in w),
            "reproducible": sum(1 for r in served if r.identical.get(str(r.served[name]))),
            "rebuilt": sum(1 for r in served if r.identical.get(str(r.served[name])) is not None),
        }
    return result


def per_target_table(counts: dict[str, dict[str, int]]) -> str:
    """The per-target counts as Markdown."""
    lines = [
        "| target | admitted | built | not built: need crates | platform wheels | manylinux "
        + "| reproducible |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, c in counts.items():
        pct = 100 * c["reproducible"] / c["built"] if c["built"] else 0.0
        lines.append(
            f"| {name} | {c['admitted']} | {c['built']} | {c['needs_crates']} | "
            f"{c['platform_wheels']} | {c['manylinux']} | "
            f"{c['reproducible']} of {c['built']} ({pct:.0f} %) |"
        )
    return "\n".join(lines)


def _count(rows: Sequence[Row], category: str) -> int:
    return sum(1 for r in rows if r.category == category)


def _short(text: str, limit: int = 90) -> str:
    line = next((x for x in text.splitlines() if x.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def table(rows: Sequence[Row]) -> str:
    """The per-package table as Markdown (also readable on a terminal)."""
    lines = [
        "| package | version | kind | built | seconds | reproducible | rebuild s | category: reason |",
        "| --- | --- | --- | --- | ---: | --- | ---: | --- |",
    ]
    for r in sorted(rows, key=lambda r: r.project):
        ok = r.status in ("succeeded", "skipped")
        if r.reproducible is True:
            repro = "yes"
        elif r.reproducible is False:
            repro = "NO: " + ", ".join(r.differing[:4])
        else:
            repro = ("rebuild failed: " + _short(r.rebuild_error, 60)) if ok else "-"
        # A crate failure's message starts with its category and the crate already.
        said = r.reason.removeprefix(f"{r.category}: ")
        reason = "" if ok else f"{r.category}: {_short(said, 200)}"
        lines.append(
            f"| {r.project} | {r.version} | {r.kind} | {'yes' if ok else 'NO'} | "
            f"{r.seconds or 0:.1f} | {repro} | {r.rebuild_seconds or 0:.1f} | {reason} |"
        )
    return "\n".join(lines)


def summary_text(s: dict[str, object]) -> str:
    """The totals as Markdown bullets."""
    pure, ext, second, rust = s["pure"], s["extension"], s["second_run"], s["failed_rust"]
    assert isinstance(pure, dict) and isinstance(ext, dict) and isinstance(second, dict)
    assert isinstance(rust, dict)
    rust_text = ", ".join(f"{c} {n}" for c, n in rust.items()) or "none"
    built, repro = int(str(s["built"])), int(str(s["reproducible"]))
    pct = 100 * repro / built if built else 0.0
    slowest = s["slowest"]
    assert isinstance(slowest, list)
    lines = [
        (
            f"- built: {built} of {s['total']} (pure {pure['built']}, extensions {ext['built']}); "
            f"failed {s['failed']}: Rust {sum(rust.values())} ({rust_text}), "
            f"other {s['failed_other']}, without a stated reason {s['failed_without_reason']}"
        ),
        (
            f"- bit-for-bit reproducible across two host paths: {repro} of {built} ({pct:.0f} %): "
            f"pure {pure['reproducible']}/{pure['built']}, "
            f"extensions {ext['reproducible']}/{ext['built']}; "
            f"rebuilds that failed: {s['rebuild_failed']}"
        ),
        f"- first-build time per package ({s['jobs']} builds at a time): median "
        f"{s['median_seconds']} s (pure {pure['median_seconds']} s, extensions "
        f"{ext['median_seconds']} s); slowest "
        + ", ".join(f"{name} {sec} s" for name, sec in slowest),
        (
            f"- second run of the whole list over the same data dir: {second['seconds']} s; "
            f"{second['skipped']} skipped, {second['not_retried_failures']} earlier failures "
            f"not retried, {second['builds']} sandboxed builds"
        ),
        f"- phase wall-clock seconds: {s['phase_seconds']}",
    ]
    pure_builds = s.get("pure_builds")
    if isinstance(pure_builds, dict):
        lines.append(
            f"- pure releases built once whatever the number of targets: "
            f"{pure_builds['built_once']} of {pure_builds['releases']} "
            f"({pure_builds['builds']} sandboxed builds for {pure_builds['releases']} releases)"
        )
    return "\n".join(lines)


def append_readme(text: str) -> None:
    """Append *text* to bench/README.md (other sections are left as they are)."""
    with README.open("a", encoding="utf-8") as handle:
        handle.write("\n" + text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--list", type=Path, default=DEFAULT_LIST, help="corpus list, one name==version a line"
    )
    parser.add_argument(
        "--data-dir", type=Path, help="data dir to build into (default: a temporary one)"
    )
    parser.add_argument("--jobs", type=int, default=2, help="builds at the same time (default 2)")
    parser.add_argument("--only", nargs="*", default=[], help="only these project names")
    parser.add_argument("--upstream", help="upstream simple index (default: the settings')")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per sandboxed step")
    parser.add_argument(
        "--readme", action="store_true", help="append the results to bench/README.md"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    parser.add_argument(
        "--python",
        nargs="*",
        default=[],
        help="build targets, as the build_pythons setting names them (default: every one found)",
    )
    parser.add_argument(
        "--agree",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: time the list with two agreeing builds per wheel against one (issue 17)",
    )
    parser.add_argument(
        "--agree-last",
        action="store_true",
        help="with --agree 2: the pass without agreement first (caches then favour agreement)",
    )
    args = parser.parse_args(argv)
    if args.agree == 2:
        return main_agree(args)

    rows = _rows(args)
    temporary = args.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="fromsource-corpus-")) if temporary else args.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=data_dir, build_pythons=args.python)
    ctx = BuildContext.from_settings(
        settings, upstream=args.upstream, limits=SandboxLimits(timeout_seconds=args.timeout)
    )
    out = Printer()
    out.say(f"{len(rows)} packages from {args.list.name}, data dir {data_dir}, jobs {args.jobs}")
    started = datetime.now(UTC)
    times: dict[str, float] = {}
    try:
        ctx.tool()
        targets = [t.name for t in ctx.build_targets()]
        out.say(f"targets: {', '.join(targets)}")
        times["build"] = first_pass(ctx, rows, args.jobs, out)
        serve_pass(ctx, rows)
        out.say(f"first builds done in {times['build']:.0f} s; rebuilding in other paths")
        times["rebuild"] = rebuild_pass(ctx, rows, args.jobs, out)
        out.say(f"rebuild checks done in {times['rebuild']:.0f} s; second run of the corpus")
        times["second"] = second_pass(ctx, rows, args.jobs, out)
        out.say(f"second run done in {times['second']:.2f} s")
    finally:
        ctx.close()
        if temporary and not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)

    ordered = sorted(rows.values(), key=lambda r: r.project)
    summary = totals(ordered, times)
    summary["jobs"] = args.jobs
    summary["targets"] = per_target(ordered, targets)
    document = {
        "schema_version": 1,
        "started": started.isoformat(),
        "list": args.list.name,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "summary": summary,
        "packages": [r.to_json() for r in ordered],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    result_file = RESULTS / f"corpus-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    result_file.write_text(json.dumps(document, indent=2, default=str) + "\n")
    text = summary_text(summary)
    matrix = per_target_table(per_target(ordered, targets))
    print(table(ordered))
    print()
    print(matrix)
    print()
    print(text)
    print(f"\nresults: {result_file.relative_to(ROOT)}")
    if args.readme:
        chosen = f" --python {' '.join(args.python)}" if args.python else ""
        append_readme(
            "## Corpus: build, rebuild elsewhere, build again (`corpus_bench.py`) — "
            f"{started.strftime('%Y-%m-%d')}\n\n"
            f"`.venv/bin/python bench/corpus_bench.py --jobs {args.jobs}{chosen} --readme` over "
            f"`{args.list.name}` ({len(rows)} releases) for {len(targets)} target(s) "
            f"({', '.join(targets)}), {document['machine']} shared with other jobs, "
            "bubblewrap sandbox with no network.\n\n"
            f"{text}\n\nPer target:\n\n{matrix}\n\n{table(ordered)}\n"
        )
    return 0


def _rows(args: argparse.Namespace) -> dict[tuple[str, str], Row]:
    """One row per release of the list (``--only``: of those projects), keyed by release."""
    requirements = read_list(args.list)
    if args.only:
        wanted = {normalize(n) for n in args.only}
        requirements = [r for r in requirements if normalize(Requirement(r).name) in wanted]
    rows: dict[tuple[str, str], Row] = {}
    for text in requirements:
        req = Requirement(text)
        version = next(iter(req.specifier)).version
        rows[key_of(req.name, version)] = Row(text, normalize(req.name), version)
    return rows


def main_agree(args: argparse.Namespace) -> int:
    """``--agree 2``: the list with agreement, then without, each into a fresh data dir."""
    rows = _rows(args)
    base = Path(tempfile.mkdtemp(prefix="fromsource-corpus-agree-"))
    out = Printer()
    order = "1 then 2" if args.agree_last else "2 then 1"
    out.say(f"{len(rows)} packages from {args.list.name}, jobs {args.jobs}, agree {order}")
    started = datetime.now(UTC)
    times: dict[str, float] = {}
    try:
        passes = [(2, "agree", agree_pass), (1, "build", first_pass)]
        for agree, phase, run in reversed(passes) if args.agree_last else passes:
            settings = Settings(data_dir=base / f"agree-{agree}", build_pythons=args.python)
            ctx = BuildContext.from_settings(
                settings,
                upstream=args.upstream,
                limits=SandboxLimits(timeout_seconds=args.timeout),
                agree=agree,
            )
            try:
                ctx.tool()
                times[phase] = run(ctx, rows, args.jobs, out)
            finally:
                ctx.close()
            out.say(f"agree {agree}: {times[phase]:.1f} s")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    ordered = sorted(rows.values(), key=lambda r: r.project)
    summary = agreement_totals(ordered, times, args.jobs)
    document = {
        "schema_version": 1,
        "started": started.isoformat(),
        "list": args.list.name,
        "only": args.only,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "agreement": {**summary, "order": order},
        "packages": [r.to_json() for r in ordered],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    result_file = RESULTS / f"corpus-agree-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    result_file.write_text(json.dumps(document, indent=2, default=str) + "\n")
    text = agreement_text(summary)
    print(agreement_table(ordered))
    print()
    print(text)
    print(f"\nresults: {result_file.relative_to(ROOT)}")
    if args.readme:
        only = f" --only {' '.join(args.only)}" if args.only else ""
        only += f" --python {' '.join(args.python)}" if args.python else ""
        append_readme(
            "## Corpus: the cost of two agreeing builds (`corpus_bench.py --agree 2`) — "
            f"{started.strftime('%Y-%m-%d')}\n\n"
            f"`.venv/bin/python bench/corpus_bench.py --agree 2 --jobs {args.jobs}{only} "
            f"--readme` over `{args.list.name}` ({len(rows)} releases), Python "
            f"{platform.python_version()}, {document['machine']} shared with other jobs, "
            "bubblewrap sandbox with no network.\n\n"
            f"{text}\n\n{agreement_table(ordered)}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
