"""A cargo sparse registry as a crate source: ``.crate`` archives over HTTP(S) (issue 13).

An operator points ``FROMSOURCE_CRATES`` at a registry (``sparse+`` and the registry URL:
the public one, or a repository manager's cargo remote).  The registry's
``config.json`` names the download location (``dl``); each crate is read from
it on the host, before the sandbox, under a byte cap, into the build's
downloads folder.  Its digest is checked by
:func:`fromsource.build.crate_fetch.prepare_crates` against Cargo.lock, so a
registry can withhold a crate but never change one.  Only ``http``/``https``
are followed (a redirect elsewhere is refused); credentials in the URL go to
its own origin only (httpx drops them on a redirect to another).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import httpx

from fromsource.build.crates import LockedCrate
from fromsource.errors import CrateError
from fromsource.indexclient import redact

__all__ = ["MAX_CRATE_BYTES", "SparseRegistry", "crate_prefix", "download_url"]

MAX_CRATE_BYTES = 256 << 20
"""The largest ``.crate`` read from a registry (the public registry's own limit is far lower)."""

_MAX_CONFIG_BYTES = 1 << 20
_MARKERS = ("{crate}", "{version}", "{prefix}", "{lowerprefix}", "{sha256-checksum}")


def crate_prefix(name: str) -> str:
    """The index path prefix of a crate name, as cargo's registry layout defines it."""
    if len(name) <= 2:
        return str(len(name))
    if len(name) == 3:
        return f"3/{name[0]}"
    return f"{name[:2]}/{name[2:4]}"


def download_url(dl: str, crate: LockedCrate) -> str:
    """The URL of *crate*'s archive from the registry's ``dl`` template.

    With none of cargo's markers in *dl*, ``/{crate}/{version}/download`` is
    appended, as cargo does.
    """
    if not any(marker in dl for marker in _MARKERS):
        return f"{dl.rstrip('/')}/{quote(crate.name)}/{quote(crate.version)}/download"
    prefix = crate_prefix(crate.name)
    values = {
        "{crate}": crate.name,
        "{version}": crate.version,
        "{prefix}": prefix,
        "{lowerprefix}": prefix.lower(),
        "{sha256-checksum}": crate.checksum or "",
    }
    for marker, value in values.items():
        dl = dl.replace(marker, quote(value, safe="/"))
    return dl


class SparseRegistry:
    """A cargo sparse registry at *url* (``sparse+`` and its URL, or the plain URL).

    *timeout* is per request, in seconds; at most *max_bytes* are read per crate.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 60.0,
        max_bytes: int = MAX_CRATE_BYTES,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        base = url.removeprefix("sparse+")
        self.base = base if base.endswith("/") else base + "/"
        self.max_bytes = max_bytes
        self._client = httpx.Client(
            timeout=timeout, follow_redirects=True, transport=transport, trust_env=False
        )
        self._dl: str | None = None

    def describe(self) -> str:
        """The registry, without credentials, for messages."""
        return f"the crate registry {redact(self.base)}"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def _unreachable(self, crate: LockedCrate, what: str, why: str) -> CrateError:
        return CrateError(
            f"crates-unavailable: {crate.label}: {self.describe()} could not give {what} "
            f"({why}); check the registry and build again, nothing was built",
            category="crates-unavailable",
            crate=crate.name,
            version=crate.version,
        )

    def _download_template(self, crate: LockedCrate) -> str:
        if self._dl is None:
            try:
                response = self._client.get(self.base + "config.json")
            except httpx.HTTPError as exc:
                raise self._unreachable(
                    crate, "its config.json", str(exc) or type(exc).__name__
                ) from exc
            if response.status_code != 200 or len(response.content) > _MAX_CONFIG_BYTES:
                raise self._unreachable(crate, "its config.json", f"HTTP {response.status_code}")
            try:
                dl = json.loads(response.content)["dl"]
            except (ValueError, KeyError, TypeError) as exc:
                raise self._unreachable(crate, "a usable config.json", "no 'dl' in it") from exc
            if not isinstance(dl, str):
                raise self._unreachable(crate, "a usable config.json", "'dl' is not a string")
            self._dl = dl if "://" in dl else self.base + dl.lstrip("/")
        return self._dl

    def fetch(self, crate: LockedCrate, dest: Path) -> Path | None:
        """Download *crate*'s archive into *dest*; None when the registry does not have it.

        Raises CrateError (``crates-unavailable``, naming the crate) when the
        registry cannot be reached, answers an error, or sends more than
        *max_bytes*.
        """
        url = download_url(self._download_template(crate), crate)
        if not url.startswith(("https://", "http://")):
            raise self._unreachable(crate, crate.filename, f"its download URL {url!r} is not HTTP")
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / crate.filename
        partial = target.with_name(target.name + ".part")
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code in (404, 410):
                    return None
                if response.status_code != 200:
                    raise self._unreachable(crate, crate.filename, f"HTTP {response.status_code}")
                size = 0
                with partial.open("wb") as out:
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise self._unreachable(
                                crate, crate.filename, f"more than {self.max_bytes} bytes"
                            )
                        out.write(chunk)
        except httpx.HTTPError as exc:
            partial.unlink(missing_ok=True)
            raise self._unreachable(crate, crate.filename, str(exc) or type(exc).__name__) from exc
        except CrateError:
            partial.unlink(missing_ok=True)
            raise
        partial.rename(target)
        return target
