"""Where attestations come from: the index over HTTP, or a folder for offline use.

Both implement :class:`AttestationSource`; the core asks it for the trusted
keys, for the attested files of a project and version, for the advisories
it holds about a project (an index does, a folder does not) and whether it
refuses a project outright (an index answering ``409 Conflict``), and never
sees HTTP or paths.  The index is read through :mod:`fromsource.indexclient`:
credentials go only to the index's own origin and never appear in a message.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion

from fromsource.config import REPOSITORIES, UPSTREAM_REPOSITORY
from fromsource.dist.names import normalize, parse_filename
from fromsource.errors import (
    IndexClientError,
    InvalidDistributionError,
    ProvenanceError,
    RemediateError,
    VerifyError,
)
from fromsource.indexclient import (
    CREDENTIALS_HINT,
    JSON_TYPE,
    Answer,
    Credentials,
    IndexClient,
    ProjectPage,
    parse_json_page,
    redact,
    split_index_url,
)
from fromsource.provenance.dsse import envelope_bytes
from fromsource.provenance.keys import parse_keys_document
from fromsource.provenance.pep740 import from_pep740
from fromsource.remediate.osv import Advisory, parse_advisory
from fromsource.verify.decide import same_version
from fromsource.verify.inputs import read_wheel
from fromsource.verify.model import Candidate, Listed

KEYS_PATH = ".well-known/fromsource/keys.json"
_REASON_CHARS = 500
"""The most of a refusal's body a report carries (the body is the index's, untrusted)."""


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

    def sdists(self, project: str, version: str) -> list[Listed]:
        """Sdists of *project* at exactly *version* the source has (with their provenance)."""
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

    def upstream_listing(self, project: str, version: str) -> list[Listed]:
        """Files of *project* at *version* the index serves from its upstream (``python-upstream``)."""
        ...

    def upstream_members(self, listed: Listed) -> Mapping[str, str] | None:
        """The sha256 of every member of the upstream wheel *listed*; None when unavailable."""
        ...

    def refusal(self, project: str) -> str | None:
        """Why the source refuses every version of *project* (asked after a listing), or None."""
        ...

    def close(self) -> None:
        """Release what the source holds open."""
        ...


def load_keys(path: Path) -> dict[str, Ed25519PublicKey]:
    """The pinned keys in the keys.json at *path*; VerifyError when unreadable or invalid."""
    try:
        return parse_keys_document(path.read_bytes())
    except OSError as exc:
        raise VerifyError(
            f"{path}: cannot read the keys file ({exc.strerror})", path=str(path)
        ) from exc
    except ProvenanceError as exc:
        raise VerifyError(
            f"{path}: {exc.message}; pass a copy of the index's /{KEYS_PATH}", path=str(path)
        ) from exc


def _wheel_key(filename: str) -> tuple[str, str] | None:
    try:
        name, version, _build, _tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        return None
    return str(name), str(version)


def _sdist_key(filename: str) -> tuple[str, str] | None:
    try:
        parsed = parse_filename(filename)
    except InvalidDistributionError:
        return None
    return (str(parsed.project), str(parsed.version)) if parsed.kind == "sdist" else None


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
    """Attestations in a folder: ``<wheel or sdist filename>.provenance.json`` or ``.dsse.json``.

    *keys* are the pinned trusted keys (offline use always pins them).
    """

    SUFFIXES = (".provenance.json", ".dsse.json")

    def __init__(self, folder: Path, keys: Mapping[str, Ed25519PublicKey]) -> None:
        if not folder.is_dir():
            raise VerifyError(
                f"{folder}: --attestations must be a folder of <wheel>.provenance.json files",
                path=str(folder),
            )
        self.folder = folder
        self.description = f"attestations folder {folder}"
        self._keys = dict(keys)
        self.warnings: list[str] = []
        self._by_key: dict[tuple[str, str], list[Path]] = {}
        self._sdists: dict[tuple[str, str], list[Path]] = {}
        for path in sorted(folder.iterdir()):
            suffix = next((s for s in self.SUFFIXES if path.name.endswith(s)), None)
            if suffix is None:
                continue
            key = _wheel_key(path.name.removesuffix(suffix))
            if key is not None:
                self._by_key.setdefault(key, []).append(path)
            elif (key := _sdist_key(path.name.removesuffix(suffix))) is not None:
                self._sdists.setdefault(key, []).append(path)
            else:
                self.warnings.append(
                    f"{path}: ignored, the name is not <wheel or sdist filename>{suffix}"
                )

    def trusted_keys(self) -> Mapping[str, Ed25519PublicKey]:
        """The pinned keys."""
        return self._keys

    def close(self) -> None:
        """Nothing to release."""

    def advisories(self, project: str) -> list[Advisory] | None:
        """None: a folder of attestations holds no advisories (``--advisories DIR`` does)."""
        return None

    def upstream_listing(self, project: str, version: str) -> list[Listed]:
        """None: a folder holds no files served from an upstream."""
        return []

    def upstream_members(self, listed: Listed) -> Mapping[str, str] | None:
        """None: a folder holds no files served from an upstream."""
        return None

    def refusal(self, project: str) -> str | None:
        """None: a folder refuses nothing."""
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

    def sdists(self, project: str, version: str) -> list[Listed]:
        """Attestation files for sdists of *project* at exactly *version*."""
        wanted = normalize(project)
        return [
            Listed(self._filename(path), str(path), ref=str(path))
            for (name, file_version), paths in self._sdists.items()
            if name == wanted and same_version(version, file_version)
            for path in paths
        ]

    def _filename(self, path: Path) -> str:
        return next(path.name.removesuffix(s) for s in self.SUFFIXES if path.name.endswith(s))

    def fetch(self, listed: Listed) -> Candidate:
        """Read the attestation file; VerifyError when it cannot be read."""
        assert listed.ref is not None
        try:
            data = Path(listed.ref).read_bytes()
        except OSError as exc:
            raise VerifyError(
                f"{listed.ref}: cannot read ({exc.strerror})", path=listed.ref
            ) from exc
        return Candidate(listed.filename, listed.origin, envelope_from_document(data))


# -- the index over HTTP --------------------------------------------------------------------


class IndexSource:
    """Attestations and keys fetched from a fromsource index (PEP 691 JSON pages, PEP 740).

    *url* is ``--index`` (see :func:`~fromsource.indexclient.split_index_url`):
    the root searches every file repository, ``.../<repo>/simple/`` that one.
    *keys* pins the trusted keys; None trusts the keys the index publishes
    (and the report prints their ids so a user can pin them).  Requests go
    through :class:`~fromsource.indexclient.IndexClient` (credentials to
    the index's origin only, retries, caps); *transport* lets tests aim it
    at anything httpx takes.  Failures raise VerifyError.
    """

    def __init__(
        self,
        url: str,
        credentials: Credentials | None = None,
        keys: Mapping[str, Ed25519PublicKey] | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parsed = split_index_url(url)
        self.root = parsed.root
        self.repos = (parsed.repo,) if parsed.repo else REPOSITORIES
        # Where files served from the upstream are listed (marked with _fromsource).
        self.upstream_repos: tuple[str, ...] = (
            (UPSTREAM_REPOSITORY,)
            if parsed.repo is None
            else (parsed.repo,)
            if parsed.repo in (UPSTREAM_REPOSITORY, "python-all")
            else ()
        )
        single = f"{parsed.repo}/simple/" if parsed.repo else ""
        self.description = f"index {self.root}{single}"
        self.keys_pinned = keys is not None
        self._keys = dict(keys) if keys is not None else None
        self._client = IndexClient(
            self.root, credentials, timeout=timeout, agent="fromsource-verify", transport=transport
        )
        self._pages: dict[tuple[str, str], ProjectPage | None] = {}
        self._refusals: dict[str, str] = {}
        self._lock = threading.Lock()
        self._no_advisories = False
        self._advisories: dict[str, list[Advisory]] = {}
        self.warnings: list[str] = []

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()

    def _get(self, url: str, accept: str, what: str) -> Answer | None:
        """The answer for *url*: None for a 404; the answer for a 403 or a 409 (policy
        refuses what was asked for), which the caller reads; VerifyError for others."""
        try:
            answer = self._client.get(url, what=what, accept=accept)
        except IndexClientError as exc:
            raise _verify_error(exc, "check --index and that the index is reachable") from exc
        if answer.status == 404:
            return None
        if answer.status == 401:
            raise _verify_error(answer.refusal(what), CREDENTIALS_HINT)
        if answer.status >= 400 and answer.status not in (403, 409):
            raise _verify_error(answer.refusal(what), "try again later or ask its operator")
        return answer

    def _refused(self, project: str, url: str, answer: Answer) -> None:
        """Remember that the index refuses *project* (a 409 on its page at *url*), and why.

        The reason is the answer's body, the index's words (the MAL id and
        summary, or the block rule), on one line and capped.
        """
        text = answer.body[: _REASON_CHARS * 4].decode("utf-8", "replace")
        text = "".join(c for c in " ".join(text.split()) if c.isprintable())
        text = text.removeprefix("409 Conflict:").strip()[:_REASON_CHARS] or "no reason given"
        with self._lock:
            self._refusals.setdefault(
                normalize(project),
                f"refused by the index ({redact(url)} answered 409 Conflict): {text}",
            )

    def refusal(self, project: str) -> str | None:
        """Why the index refused *project*'s page (``409 Conflict``), once a listing read it."""
        with self._lock:
            return self._refusals.get(normalize(project))

    def trusted_keys(self) -> Mapping[str, Ed25519PublicKey]:
        """Pinned keys, else the keys published at ``/.well-known/fromsource/keys.json``."""
        if self._keys is None:
            url = self.root + KEYS_PATH
            answer = self._get(url, "application/json", "the index's keys")
            if answer is None or answer.status != 200:
                raise VerifyError(
                    f"{url}: the index publishes no keys; pin them with --keys", url=url
                )
            try:
                self._keys = parse_keys_document(answer.body)
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
        answer = self._get(url, "application/json", f"advisories of {name}")
        if answer is None or answer.status != 200:
            self._no_advisories = True
            status = 404 if answer is None else answer.status
            self._warn_once(
                f"{self.root}api/advisories/: {status}, the index serves no advisories "
                "to this client; known vulnerabilities were not checked (pass "
                "--advisories DIR to check them against a folder of OSV records)"
            )
            return None
        try:
            records = json.loads(answer.body)["advisories"]
            if not isinstance(records, list):
                raise TypeError("'advisories' is not a list")
            found = [parse_advisory(record, origin=url) for record in records]
        except (ValueError, KeyError, TypeError) as exc:
            raise VerifyError(
                f"{url}: not an advisories document ({exc}); is --index a fromsource index?",
                url=url,
            ) from exc
        except RemediateError as exc:
            raise VerifyError(
                f"{exc.message}; ask the index's operator to fix that record", url=url
            ) from exc
        with self._lock:
            self._advisories[name] = found
        return found

    def _page(self, repo: str, project: str) -> tuple[str, ProjectPage | None]:
        url = f"{self.root}{repo}/simple/{normalize(project)}/"
        with self._lock:
            if (repo, project) in self._pages:
                return url, self._pages[(repo, project)]
        answer = self._get(url, JSON_TYPE, f"project {project}")
        page: ProjectPage | None = None
        if answer is not None and answer.status == 403:
            self._warn_once(f"{self.root}{repo}/: 403, the credentials have no access; skipped")
        elif answer is not None and answer.status == 409:
            self._refused(project, url, answer)
        elif answer is not None:
            try:
                page = parse_json_page(answer.body, answer.url)
            except IndexClientError as exc:
                raise _verify_error(exc, "is --index a fromsource index?") from exc
        with self._lock:
            self._pages[(repo, project)] = page
        return url, page

    def versions(self, project: str) -> list[str]:
        """Versions listed on the project's page in every repository searched."""
        found: dict[str, None] = {}
        for repo in self.repos:
            _url, page = self._page(repo, project)
            for f in page.files if page else ():
                key = _wheel_key(f.filename) if f.origin is None else None
                if key:
                    found[key[1]] = None
        return list(found)

    def listing(self, project: str, version: str, *, allow_local: bool = False) -> list[Listed]:
        """Wheels of *project* at *version* listed in every repository searched."""
        found: list[Listed] = []
        for repo in self.repos:
            url, page = self._page(repo, project)
            for f in page.files if page else ():
                key = _wheel_key(f.filename)
                if key is None or f.origin is not None:  # not built here: see upstream_listing
                    continue
                if not same_version(version, key[1], allow_local):
                    continue
                found.append(Listed(f.filename, url, f.sha256, repo, f.provenance_url))
        return found

    def sdists(self, project: str, version: str) -> list[Listed]:
        """Sdists of *project* at exactly *version* listed in every repository searched."""
        found: list[Listed] = []
        for repo in self.repos:
            url, page = self._page(repo, project)
            for f in page.files if page else ():
                key = _sdist_key(f.filename)
                if key is not None and same_version(version, key[1]):
                    found.append(Listed(f.filename, url, f.sha256, repo, f.provenance_url))
        return found

    def _upstream_page(self, repo: str, project: str) -> tuple[str, ProjectPage | None]:
        """A page searched only for upstream files: any failure is a warning, never an error.

        A token without the upstream entitlement (403) or a project the upstream
        lacks (404) is no news: then nothing can have come from there.  A project
        the index refuses (409) is remembered as :meth:`_page` does.
        """
        if repo in self.repos:
            return self._page(repo, project)
        url = f"{self.root}{repo}/simple/{normalize(project)}/"
        with self._lock:
            if (repo, project) in self._pages:
                return url, self._pages[(repo, project)]
        page: ProjectPage | None = None
        try:
            answer = self._client.get(url, what=f"project {project}", accept=JSON_TYPE)
            if answer.status == 200:
                page = parse_json_page(answer.body, answer.url)
            elif answer.status == 409:
                self._refused(project, url, answer)
            elif answer.status not in (403, 404):
                self._warn_once(
                    f"{url}: {answer.status}; files served from the upstream were not looked for"
                )
        except IndexClientError as exc:
            self._warn_once(f"{exc.message}; files served from the upstream were not looked for")
        with self._lock:
            self._pages[(repo, project)] = page
        return url, page

    def upstream_listing(self, project: str, version: str) -> list[Listed]:
        """Files of *project* at *version* marked as served from the upstream (wheels and sdists)."""
        found: list[Listed] = []
        for repo in self.upstream_repos:
            url, page = self._upstream_page(repo, project)
            for f in page.files if page else ():
                if f.origin is None:
                    continue
                try:
                    parsed = parse_filename(f.filename)
                except InvalidDistributionError:
                    continue
                if parsed.project != normalize(project) or not same_version(
                    version, str(parsed.version)
                ):
                    continue
                found.append(
                    Listed(
                        f.filename,
                        url,
                        f.sha256,
                        repo,
                        f.url,
                        served_from=f.origin,
                        policy_generation=f.policy_generation,
                    )
                )
        return found

    def upstream_members(self, listed: Listed) -> Mapping[str, str] | None:
        """The members of the upstream wheel *listed*, downloaded from the index under its cap.

        None (with a warning) when it cannot be fetched or read, or its sha256
        is not the listed one.
        """
        name = listed.filename
        if listed.ref is None or not name.endswith(".whl") or "/" in name or name.startswith("."):
            return None
        with tempfile.TemporaryDirectory(prefix="fromsource-verify-") as folder:
            path = Path(folder) / name
            try:
                with path.open("wb") as out:
                    digest = self._client.download(listed.ref, out, what=name)
            except IndexClientError as exc:
                self._warn_once(f"{exc.message}; it was not compared with what is installed")
                return None
            if listed.listed_sha256 is not None and digest != listed.listed_sha256:
                self._warn_once(
                    f"{name}: the index served sha256 {digest}, its page lists "
                    f"{listed.listed_sha256}; it was not compared with what is installed"
                )
                return None
            try:
                return dict(read_wheel(path).members)
            except VerifyError as exc:
                self._warn_once(f"{exc.message}; it was not compared with what is installed")
                return None

    def fetch(self, listed: Listed) -> Candidate:
        """The provenance of a listed wheel or sdist, as a DSSE envelope."""
        if listed.ref is None:
            return Candidate(
                listed.filename,
                listed.origin,
                None,
                listed.listed_sha256,
                listed.repository,
                f"{listed.filename} is listed without provenance",
            )
        answer = self._get(
            listed.ref,
            "application/vnd.pypi.integrity.v1+json, application/json",
            f"the provenance of {listed.filename}",
        )
        if answer is None or answer.status != 200:
            status = 404 if answer is None else answer.status
            return Candidate(
                listed.filename,
                listed.ref,
                None,
                listed.listed_sha256,
                listed.repository,
                f"{listed.filename}: its provenance URL answered {status}",
            )
        return Candidate(
            listed.filename,
            listed.ref,
            envelope_from_document(answer.body),
            listed.listed_sha256,
            listed.repository,
        )


def _verify_error(exc: IndexClientError, advice: str) -> VerifyError:
    """*exc* as verify's error, with what to do next; its facts kept."""
    return VerifyError(f"{exc.message}; {advice}", **exc.facts)
