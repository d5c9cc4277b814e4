"""Where attestations come from: the index over HTTP, or a folder for offline use.

Both implement :class:`AttestationSource`; the core asks it for the trusted
keys, for the attested files of a project and version, and for the
advisories it holds about a project (an index does, a folder does not), and
never sees HTTP or paths.  Credentials go only to the index's own origin and never
appear in a message.
"""

from __future__ import annotations

import json
import netrc
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion

from fromsource import __version__
from fromsource.config import REPOSITORIES
from fromsource.dist.names import normalize
from fromsource.errors import ProvenanceError, RemediateError, VerifyError
from fromsource.provenance.dsse import envelope_bytes
from fromsource.provenance.keys import parse_keys_document
from fromsource.provenance.pep740 import from_pep740
from fromsource.remediate.osv import Advisory, parse_advisory
from fromsource.verify.decide import same_version
from fromsource.verify.model import Candidate, Listed

KEYS_PATH = ".well-known/fromsource/keys.json"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


class AttestationSource(Protocol):
    """Trusted keys plus the attested files of each project version."""

    description: str
    warnings: list[str]

    def trusted_keys(self) -> Mapping[str, Ed25519PublicKey]:
        """The keys an attestation must be signed with, by key id."""
        ...

    def listing(self, project: str, version: str, *, allow_local: bool = False) -> list[Listed]:
        """Wheels of *project* at *version* (see ``decide.same_version``) the source has."""
        ...

    def fetch(self, listed: Listed) -> Candidate:
        """The provenance of *listed* (``envelope`` None with a ``problem`` when it has none)."""
        ...

    def versions(self, project: str) -> list[str]:
        """Every version of *project* the source holds files for."""
        ...

    def advisories(self, project: str) -> list[Advisory] | None:
        """The OSV advisories the source holds about *project*; None when it holds none at all."""
        ...

    def close(self) -> None:
        """Release what the source holds open."""
        ...


def load_keys(path: Path) -> dict[str, Ed25519PublicKey]:
    """The pinned keys in the keys.json at *path*; VerifyError when unreadable or invalid."""
    try:
        return parse_keys_document(path.read_bytes())
    except OSError as exc:
        raise VerifyError(f"{path}: cannot read the keys file ({exc.strerror})", path=str(path)) from exc
    except ProvenanceError as exc:
        raise VerifyError(f"{path}: {exc.message}; pass a copy of the index's "
                          f"/{KEYS_PATH}", path=str(path)) from exc


def _wheel_key(filename: str) -> tuple[str, str] | None:
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        return None
    return str(name), str(version)


def envelope_from_document(data: bytes) -> bytes:
    """The DSSE envelope bytes in *data*: a PEP 740 provenance object or a raw envelope.

    Returns *data* unchanged when it is neither, so that verification reports
    it as malformed rather than this function hiding it.
    """
    try:
        doc = json.loads(data)
    except ValueError:
        return data
    if isinstance(doc, dict) and "attestation_bundles" in doc:
        try:
            return envelope_bytes(from_pep740(doc))
        except ProvenanceError:
            return data
    return data


class OfflineSource:
    """Attestations in a folder: ``<wheel filename>.provenance.json`` or ``.dsse.json``.

    *keys* are the pinned trusted keys (offline use always pins them).
    """

    SUFFIXES = (".provenance.json", ".dsse.json")

    def __init__(self, folder: Path, keys: Mapping[str, Ed25519PublicKey]) -> None:
        if not folder.is_dir():
            raise VerifyError(f"{folder}: --attestations must be a folder of "
                              "<wheel>.provenance.json files", path=str(folder))
        self.folder = folder
        self.description = f"attestations folder {folder}"
        self._keys = dict(keys)
        self.warnings: list[str] = []
        self._by_key: dict[tuple[str, str], list[Path]] = {}
        for path in sorted(folder.iterdir()):
            suffix = next((s for s in self.SUFFIXES if path.name.endswith(s)), None)
            if suffix is None:
                continue
            key = _wheel_key(path.name.removesuffix(suffix))
            if key is None:
                self.warnings.append(
                    f"{path}: ignored, the name is not <wheel filename>{suffix}"
                )
                continue
            self._by_key.setdefault(key, []).append(path)

    def trusted_keys(self) -> Mapping[str, Ed25519PublicKey]:
        """The pinned keys."""
        return self._keys

    def close(self) -> None:
        """Nothing to release."""

    def advisories(self, project: str) -> list[Advisory] | None:
        """None: a folder of attestations holds no advisories (``--advisories DIR`` does)."""
        return None

    def versions(self, project: str) -> list[str]:
        """Versions with at least one attestation file."""
        wanted = normalize(project)
        return sorted({v for (n, v) in self._by_key if n == wanted})

    def listing(self, project: str, version: str, *, allow_local: bool = False) -> list[Listed]:
        """Attestation files for *project* at *version*."""
        wanted = normalize(project)
        found: list[Listed] = []
        for (name, file_version), paths in self._by_key.items():
            if name != wanted or not same_version(version, file_version, allow_local):
                continue
            for path in paths:
                filename = next(
                    path.name.removesuffix(s) for s in self.SUFFIXES if path.name.endswith(s)
                )
                found.append(Listed(filename, str(path), ref=str(path)))
        return found

    def fetch(self, listed: Listed) -> Candidate:
        """Read the attestation file; VerifyError when it cannot be read."""
        assert listed.ref is not None
        try:
            data = Path(listed.ref).read_bytes()
        except OSError as exc:
            raise VerifyError(f"{listed.ref}: cannot read ({exc.strerror})", path=listed.ref) from exc
        return Candidate(listed.filename, listed.origin, envelope_from_document(data))


# -- the index over HTTP --------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """A user name and password for HTTP Basic auth (never shown in repr or messages)."""

    username: str
    password: str = field(repr=False)


def split_index_url(url: str) -> tuple[str, tuple[str, ...], str | None, str | None]:
    """(root URL, repositories, URL user, URL password) for an ``--index`` URL.

    ``http://host/`` is the root and means every file repository;
    ``http://host/<repo>/simple/`` means that one repository.  User info is
    percent-decoded and removed from the returned root.  Raises VerifyError
    for a URL that is not http(s).
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise VerifyError(f"--index {_redact(url)}: expected an http(s) URL such as "
                          "https://index.example/ or https://index.example/python/simple/")
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    if ":" in parts.hostname:
        netloc = f"[{parts.hostname}]" + (f":{parts.port}" if parts.port else "")
    segments = [s for s in parts.path.split("/") if s]
    repos: tuple[str, ...] = REPOSITORIES
    if len(segments) >= 2 and segments[-1] == "simple":
        repos = (segments[-2],)
        segments = segments[:-2]
    path = "/" + "/".join(segments) + ("/" if segments else "")
    return urlunsplit((parts.scheme, netloc, path, "", "")), repos, user, password


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def resolve_credentials(
    url: str,
    username: str | None,
    password: str | None,
    environ: Mapping[str, str],
    netrc_path: Path | None,
) -> tuple[Credentials | None, list[str]]:
    """Credentials for *url*: flags, then the URL, then FROMSOURCE_USERNAME/PASSWORD, then netrc.

    Returns the credentials (or None) and warnings (e.g. an unreadable netrc).
    """
    _root, _repos, url_user, url_password = split_index_url(url)
    if username:
        return Credentials(username, password or ""), []
    if url_user:
        return Credentials(url_user, url_password or ""), []
    if environ.get("FROMSOURCE_USERNAME"):
        return Credentials(environ["FROMSOURCE_USERNAME"], environ.get("FROMSOURCE_PASSWORD", "")), []
    if netrc_path is None or not netrc_path.is_file():
        return None, []
    host = urlsplit(url).hostname or ""
    try:
        entry = netrc.netrc(str(netrc_path)).authenticators(host)
    except (netrc.NetrcParseError, OSError) as exc:
        return None, [f"{netrc_path}: ignored, it cannot be read ({exc.__class__.__name__})"]
    if entry and entry[0]:
        return Credentials(entry[0], entry[2] or ""), []
    return None, []


def default_netrc(environ: Mapping[str, str]) -> Path:
    """The netrc file pip and curl would read: ``$NETRC`` or ``~/.netrc``."""
    return Path(environ.get("NETRC") or Path.home() / ".netrc")


class OriginAuth(httpx.Auth):
    """Basic auth sent only to one origin (scheme, host, port): never to another host."""

    def __init__(self, origin: tuple[str, str, int | None], creds: Credentials) -> None:
        self._origin = origin
        self._basic = httpx.BasicAuth(creds.username, creds.password)

    def auth_flow(self, request: httpx.Request) -> Any:
        url = request.url
        if (url.scheme, url.host, url.port) == self._origin:
            yield from self._basic.auth_flow(request)
        else:
            yield request


class IndexSource:
    """Attestations and keys fetched from a fromsource index (PEP 691 JSON pages, PEP 740).

    *keys* pins the trusted keys; None trusts the keys the index publishes
    (and the report prints their ids so a user can pin them).  The
    *transport* parameter lets tests aim the client at anything httpx takes.
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials | None = None,
        keys: Mapping[str, Ed25519PublicKey] | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.root, self.repos, _user, _password = split_index_url(url)
        single = f"{self.repos[0]}/simple/" if self.repos != REPOSITORIES else ""
        self.description = f"index {self.root}{single}"
        self.keys_pinned = keys is not None
        self._keys = dict(keys) if keys is not None else None
        parts = urlsplit(self.root)
        origin = (parts.scheme, parts.hostname or "", parts.port)
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=True,
            auth=OriginAuth(origin, credentials) if credentials else None,
            headers={"User-Agent": f"fromsource-verify/{__version__}"},
            transport=transport,
        )
        self._pages: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._lock = threading.Lock()
        self._no_advisories = False
        self._advisories: dict[str, list[Advisory]] = {}
        self.warnings: list[str] = []

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def _get(self, url: str, accept: str) -> httpx.Response | None:
        try:
            response = self._client.get(url, headers={"Accept": accept})
        except httpx.HTTPError as exc:
            raise VerifyError(f"{url}: request failed ({exc.__class__.__name__}: {exc}); "
                              "check --index and that the index is reachable", url=url) from exc
        if response.status_code == 404:
            return None
        if response.status_code == 401:
            raise VerifyError(
                f"{url}: 401, the index wants credentials (none were accepted); pass "
                "--username/--password, set FROMSOURCE_USERNAME/FROMSOURCE_PASSWORD or add "
                "the host to ~/.netrc", url=url, status=401)
        if response.status_code == 403:
            return response
        if response.status_code >= 400:
            raise VerifyError(f"{url}: the index answered {response.status_code}; try again "
                              "later or ask its operator", url=url, status=response.status_code)
        return response

    def trusted_keys(self) -> Mapping[str, Ed25519PublicKey]:
        """Pinned keys, else the keys published at ``/.well-known/fromsource/keys.json``."""
        if self._keys is None:
            url = self.root + KEYS_PATH
            response = self._get(url, "application/json")
            if response is None or response.status_code != 200:
                raise VerifyError(f"{url}: the index publishes no keys; pin them with --keys",
                                  url=url)
            try:
                self._keys = parse_keys_document(response.content)
            except ProvenanceError as exc:
                raise VerifyError(f"{url}: {exc.message}", url=url) from exc
        return self._keys

    def _warn_once(self, message: str) -> None:
        with self._lock:
            if message not in self.warnings:
                self.warnings.append(message)

    def advisories(self, project: str) -> list[Advisory] | None:
        """The OSV advisories the index holds about *project* (``api/advisories/<project>``).

        None when the index serves none (an index older than the endpoint
        answers 404; a token it refuses, 403): then a warning says that
        known vulnerabilities were not checked, and no further request is
        made.  Raises VerifyError when the answer is not an advisories
        document, naming the URL.
        """
        name = normalize(project)
        with self._lock:
            if self._no_advisories:
                return None
            if name in self._advisories:
                return self._advisories[name]
        url = f"{self.root}api/advisories/{name}"
        response = self._get(url, "application/json")
        if response is None or response.status_code != 200:
            self._no_advisories = True
            status = 404 if response is None else response.status_code
            self._warn_once(f"{self.root}api/advisories/: {status}, the index serves no advisories "
                            "to this client; known vulnerabilities were not checked (pass "
                            "--advisories DIR to check them against a folder of OSV records)")
            return None
        try:
            records = response.json()["advisories"]
            if not isinstance(records, list):
                raise TypeError("'advisories' is not a list")
            found = [parse_advisory(record, origin=url) for record in records]
        except (ValueError, KeyError, TypeError) as exc:
            raise VerifyError(f"{url}: not an advisories document ({exc}); is --index a "
                              "fromsource index?", url=url) from exc
        except RemediateError as exc:
            raise VerifyError(f"{exc.message}; ask the index's operator to fix that record",
                              url=url) from exc
        with self._lock:
            self._advisories[name] = found
        return found

    def _page(self, repo: str, project: str) -> tuple[str, dict[str, Any] | None]:
        url = f"{self.root}{repo}/simple/{normalize(project)}/"
        with self._lock:
            if (repo, project) in self._pages:
                return url, self._pages[(repo, project)]
        response = self._get(url, JSON_TYPE)
        page: dict[str, Any] | None = None
        if response is not None and response.status_code == 403:
            self._warn_once(f"{self.root}{repo}/: 403, the credentials have no access; skipped")
        elif response is not None:
            try:
                loaded = response.json()
            except ValueError as exc:
                raise VerifyError(f"{url}: not a PEP 691 JSON page; is --index a fromsource "
                                  "index?", url=url) from exc
            page = loaded if isinstance(loaded, dict) else None
        with self._lock:
            self._pages[(repo, project)] = page
        return url, page

    def versions(self, project: str) -> list[str]:
        """Versions listed on the project's page in every repository searched."""
        found: dict[str, None] = {}
        for repo in self.repos:
            _url, page = self._page(repo, project)
            for f in (page or {}).get("files", []):
                key = _wheel_key(str(f.get("filename", "")))
                if key:
                    found[key[1]] = None
        return list(found)

    def listing(self, project: str, version: str, *, allow_local: bool = False) -> list[Listed]:
        """Wheels of *project* at *version* listed in every repository searched."""
        found: list[Listed] = []
        for repo in self.repos:
            url, page = self._page(repo, project)
            for f in (page or {}).get("files", []):
                filename = str(f.get("filename", ""))
                key = _wheel_key(filename)
                if key is None or not same_version(version, key[1], allow_local):
                    continue
                listed = (f.get("hashes") or {}).get("sha256")
                provenance = f.get("provenance")
                found.append(Listed(
                    filename, url,
                    listed.lower() if isinstance(listed, str) else None,
                    repo,
                    urljoin(url, provenance) if isinstance(provenance, str) and provenance else None,
                ))
        return found

    def fetch(self, listed: Listed) -> Candidate:
        """The provenance of a listed wheel, as a DSSE envelope."""
        if listed.ref is None:
            return Candidate(listed.filename, listed.origin, None, listed.listed_sha256,
                             listed.repository, f"{listed.filename} is listed without provenance")
        response = self._get(listed.ref, "application/vnd.pypi.integrity.v1+json, application/json")
        if response is None or response.status_code != 200:
            status = 404 if response is None else response.status_code
            return Candidate(listed.filename, listed.ref, None, listed.listed_sha256,
                             listed.repository,
                             f"{listed.filename}: its provenance URL answered {status}")
        return Candidate(listed.filename, listed.ref, envelope_from_document(response.content),
                         listed.listed_sha256, listed.repository)
