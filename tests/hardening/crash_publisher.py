"""A publisher that never stops, for the kill -9 loop of test_crash.py.

``python -m tests.hardening.crash_publisher DATA_DIR URL_FILE PID_FILE TOKEN_ID SECRET``
is a supervisor: it imports everything once, then forks publisher children
one after the other; the test kills each child with SIGKILL at a random
moment, and the supervisor forks the next (a fresh interpreter would take
seconds to start on a loaded machine).  A child writes its pid to PID_FILE
and publishes fresh wheels (with provenance and SBOM, so four blobs each)
into ``python``, alternating between the store directly (as the build
pipeline does) and the management API of the server whose URL is in
URL_FILE (so a killed server dies in the middle of uploads).  Each success
prints one line.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fromsource.errors import FromsourceError
from fromsource.provenance.dsse import envelope_bytes, sign_envelope
from fromsource.store.blobs import FileBlobStore
from fromsource.store.db import open_database
from fromsource.store.publish import publish_file
from tests.factories import make_wheel

PROJECTS = ("crash-alpha", "crash-beta", "crash-gamma")


def main(argv: list[str]) -> None:
    data, url_file, pid_file, token_id, secret = argv
    for seed in range(1, 1_000_000):
        child = os.fork()
        if child == 0:
            try:
                publish_forever(data, url_file, pid_file, token_id, secret, seed)
            finally:
                os._exit(0)
        os.waitpid(child, 0)


def publish_forever(data: str, url_file: str, pid_file: str, token_id: str, secret: str, seed: int) -> None:
    """Publish wheel after wheel (the child the test kills)."""
    rng = random.Random(seed)
    key = Ed25519PrivateKey.generate()
    db = open_database(f"sqlite:///{Path(data) / 'fromsource.db'}", migrate=False)
    blobs = FileBlobStore(Path(data) / "blobs")
    work = Path(tempfile.mkdtemp(prefix="crash-publisher-", dir=Path(data).parent))
    client = httpx.Client(auth=(token_id, secret), timeout=30)
    tmp = Path(pid_file + ".tmp")
    tmp.write_text(str(os.getpid()))
    tmp.replace(pid_file)
    for number in range(1, 1_000_000):
        size = 1_300_000 if number % 10 == 0 else rng.randint(1024, 200_000)
        version = f"{seed}.{number}"
        wheel = make_wheel(
            work, rng.choice(PROJECTS), version,
            files={"payload/data.bin": rng.randbytes(size)},
        )
        statement = f'{{"wheel": "{wheel.name}", "n": {number}}}'.encode()
        provenance = envelope_bytes(sign_envelope(statement, key, "crash-test-key"))
        sbom = f'{{"bomFormat": "CycloneDX", "n": {number}}}'.encode()
        via = "store" if number % 2 else "api"
        try:
            if via == "store":
                publish_file(db, blobs, wheel, "python", provenance=provenance, sbom=sbom)
            else:
                url = Path(url_file).read_text().strip()
                with wheel.open("rb") as handle:
                    response = client.post(
                        f"{url}api/repos/python/files",
                        files={
                            "file": (wheel.name, handle),
                            "attestation": ("a.json", provenance),
                            "sbom": ("s.json", sbom),
                        },
                    )
                if response.status_code != 201:
                    print(f"api {response.status_code} {response.text[:200]}", flush=True)
                    continue
        except (httpx.TransportError, OSError):
            continue  # the server is down (being killed and restarted): next wheel
        except FromsourceError as exc:
            print(f"error {exc.message}", flush=True)
            continue
        finally:
            wheel.unlink(missing_ok=True)
        print(f"published {via} {wheel.name}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
