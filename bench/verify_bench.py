"""Benchmark: ``verify`` over a venv of ~200 distributions against ``sha256sum`` on the same files.

Generates N attested wheels (deterministic random contents: small modules
and a few larger binary files), installs them into a fresh venv with uv,
then times, in the same run and with a warm page cache:

- ``verify``: the whole in-process run (site-packages discovery, RECORD
  parsing, hashing, attestation parsing, Ed25519 checks, decisions, report);
- ``sha256sum``: coreutils over exactly the files verify hashes.

Prints both times (best of --repeat) and the ratio; the target is ≤ 1.5×.

    .venv/bin/python bench/verify_bench.py [--dists 200] [--files 40] [--large 0.05]
        [--repeat 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from fromsource.dist.record import RecordEntry, parse_record
from fromsource.provenance.keys import SigningKey, keys_document
from fromsource.provenance.keystore import load_or_create_signing_key
from fromsource.provenance.statement import BuildFacts, build_statement, sign_statement
from fromsource.verify.fetch import OfflineSource
from fromsource.verify.report import render
from fromsource.verify.run import Options, verify_artifact


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_wheel(dest: Path, index: int, files: int, rng: random.Random, large: float) -> Path:
    """A wheel ``benchpkgNNN-1.0`` with *files* members of realistic sizes."""
    name = f"benchpkg{index:03d}"
    info = f"{name}-1.0.dist-info"
    contents: dict[str, bytes] = {}
    for number in range(files):
        if rng.random() < large:
            size = rng.randint(100_000, 1_500_000)
            contents[f"{name}/_native{number}.so"] = rng.randbytes(size)
        else:
            size = rng.randint(300, 12_000)
            line = f"value_{number} = {rng.random()!r}  # padding\n".encode()
            contents[f"{name}/mod{number}.py"] = (line * (size // len(line) + 1))[:size]
    contents[f"{name}/__init__.py"] = b'__version__ = "1.0"\n'
    contents[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n\n".encode()
    contents[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = "".join(f"{p},{_record_hash(d)},{len(d)}\n" for p, d in contents.items())
    contents[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    path = dest / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for member, data in contents.items():
            archive.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), data)
    return path


def attest(wheel: Path, key: SigningKey, folder: Path) -> None:
    """Write ``<wheel>.dsse.json`` for *wheel*, signed with *key*."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
        record: list[RecordEntry] = parse_record(archive.read(name).decode())
    project = wheel.name.split("-")[0]
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    facts = BuildFacts(
        project=project, version="1.0", repository="python",
        sdist_url=f"https://upstream.invalid/{project}-1.0.tar.gz", sdist_sha256="0" * 64,
        patches=(), dependencies=(), build_key="0" * 64, python="3.11", platform="any",
        source_date_epoch=0, sandbox={}, invocation_id=f"bench-{project}",
        started=moment, finished=moment,
    )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    envelope = sign_statement(build_statement(wheel.name, digest, record, facts), key)
    (folder / f"{wheel.name}.dsse.json").write_bytes(envelope)


def hashed_files(site: Path) -> list[Path]:
    """The files verify hashes: every RECORD row with a digest, outside __pycache__."""
    files: list[Path] = []
    for info in sorted(site.glob("*.dist-info")):
        for entry in parse_record((info / "RECORD").read_text()):
            if entry.sha256 is not None:
                files.append((site / entry.path).resolve())
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dists", type=int, default=200)
    parser.add_argument("--files", type=int, default=40, help="members per wheel (average)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--large", type=float, default=0.05,
                        help="share of members that are large binaries (100 KB-1.5 MB)")
    parser.add_argument("--workers", type=int, default=8, help="threads for verify")
    args = parser.parse_args()
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    sha256sum = shutil.which("sha256sum")
    if not uv or not sha256sum:
        print("needs uv and coreutils sha256sum on PATH", file=sys.stderr)
        return 2
    rng = random.Random(20240101)
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as tmp:
        base = Path(tmp)
        wheels, attestations = base / "wheels", base / "attestations"
        wheels.mkdir()
        attestations.mkdir()
        key = load_or_create_signing_key(base / "keys")
        started = time.perf_counter()
        paths = [make_wheel(wheels, i, rng.randint(args.files // 2, args.files * 3 // 2), rng,
                           args.large)
                 for i in range(args.dists)]
        for path in paths:
            attest(path, key, attestations)
        venv = base / ".venv"
        subprocess.run([uv, "venv", "-q", str(venv)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "--offline", "--no-deps", "--python",
                        str(venv / "bin" / "python"), *map(str, paths)], check=True)
        print(f"setup: {len(paths)} wheels made, attested and installed in "
              f"{time.perf_counter() - started:.1f}s", file=sys.stderr)
        site = next(venv.glob("lib/python*/site-packages"))
        files = hashed_files(site)
        total = sum(f.stat().st_size for f in files)
        listing = base / "files.txt"
        listing.write_bytes(b"\0".join(os.fsencode(f) for f in files))
        keys = {key.keyid: key.public}
        assert keys_document(keys, key.keyid)["keys"]

        def run_verify() -> float:
            t0 = time.perf_counter()
            source = OfflineSource(attestations, keys)
            report = verify_artifact(venv, ".venv/", source,
                                     Options(workers=args.workers))
            render(report, "json")
            elapsed = time.perf_counter() - t0
            assert report.verified == report.total == args.dists, render(report, "text")
            return elapsed

        def run_sha256sum() -> float:
            t0 = time.perf_counter()
            with listing.open("rb") as stdin:
                subprocess.run(["xargs", "-0", sha256sum], stdin=stdin, check=True,
                               stdout=subprocess.DEVNULL)
            return time.perf_counter() - t0

        run_verify()
        run_sha256sum()  # warm the page cache for both
        verify_times, sum_times = [], []
        for _ in range(args.repeat):
            verify_times.append(run_verify())
            sum_times.append(run_sha256sum())
        best_verify, best_sum = min(verify_times), min(sum_times)
        print(f"distributions: {args.dists}, files hashed: {len(files)}, "
              f"bytes: {total / 1e6:.1f} MB")
        print(f"sha256sum:     {best_sum:.3f}s (best of {args.repeat})")
        print(f"verify:        {best_verify:.3f}s (best of {args.repeat}, "
              f"{args.workers} threads)")
        ratio = best_verify / best_sum
        print(f"ratio:         {ratio:.2f}x (target <= 1.5x)")
        return 0


if __name__ == "__main__":
    sys.exit(main())
