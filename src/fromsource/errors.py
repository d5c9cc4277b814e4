"""The exception tree of fromsource.

One root, :class:`FromsourceError`; one branch per capability; leaves for the
cases a caller handles.  Every message says what failed, on which object and
what to do next.  Facts are kept as attributes so JSON output can carry them.
No secret ever appears in a message.
"""

from __future__ import annotations


class FromsourceError(Exception):
    """Root of every error fromsource raises on purpose."""

    def __init__(self, message: str, **facts: object) -> None:
        super().__init__(message)
        self.message = message
        self.facts = facts

    def to_json(self) -> dict[str, object]:
        """The error as a JSON-ready mapping: its kind, message and facts."""
        return {"error": type(self).__name__, "message": self.message, **self.facts}


class LimitError(FromsourceError):
    """Untrusted bytes were refused by the bounded reader (:mod:`fromsource.bounded`).

    ``category`` names the limit: ``oversized-output``, ``unsafe-output`` or
    ``timeout``; ``what`` names the file or member that was being read.
    """


class OversizedError(LimitError):
    """Bytes are larger than the cap for them (``size`` when known, ``limit``)."""


class NotRegularFileError(LimitError):
    """A path the host reads is a link, FIFO, socket, device or folder, not a regular file."""


class ReadDeadlineError(LimitError):
    """Reading untrusted output ran past its deadline."""


class ConfigError(FromsourceError):
    """Settings are missing or contradict each other."""


class TargetError(ConfigError):
    """A build target (interpreter) cannot be used, or a target description is malformed."""


class StoreError(FromsourceError):
    """The database or the blob store failed or holds something unexpected."""


class BlobNotFoundError(StoreError):
    """A blob with the requested digest is not in the store."""


class HashMismatchError(FromsourceError):
    """Bytes did not have the sha256 they were expected to have."""


class InvalidDistributionError(FromsourceError):
    """A wheel or sdist could not be read or its name/version are wrong."""


class PublishError(StoreError):
    """A file could not be published; nothing was made visible."""


class ImmutableFileError(PublishError):
    """The filename is already published with other bytes; published files never change."""


class NotPublishedError(PublishError):
    """The named file is not published in that repository."""


class PublishStorageError(PublishError):
    """The blob store failed while a file was being published (full disk, refused upload).

    Nothing was made visible; the same publish can be retried once the store works.
    """


class AuthError(FromsourceError):
    """Token handling failed (unknown token, bad expiry, ...)."""


class IndexClientError(FromsourceError):
    """A simple index (PEP 503/691) could not be read.

    Unreachable after retries, an error answer, a link the index may not
    make us follow, a file or page past its size cap, or a page that is not
    a project page.  Facts: ``url`` (without credentials) and ``status``
    when the index answered.
    """


class UnknownTokenError(AuthError):
    """No token has the given id."""


class BuildError(FromsourceError):
    """The build pipeline failed for a package."""


class CrateError(BuildError):
    """The crates of a Rust build cannot be used: unlocked, unavailable or not the locked bytes.

    ``category`` is ``unlocked-crates``, ``crates-unavailable`` or
    ``crate-checksum-mismatch``; ``crate`` and ``version`` name the first
    crate concerned when there is one.
    """


class ToolchainError(BuildError):
    """No usable Rust toolchain (category ``rust-toolchain-unavailable``)."""


class UpstreamError(BuildError):
    """The upstream index could not give us a usable sdist."""


class UnsafeArchiveError(BuildError):
    """An sdist holds a member that would escape or abuse the work tree."""


class RefusedMemberError(UnsafeArchiveError):
    """One archive member (or the whole archive, when ``member`` is None) is refused.

    Raised by the pure rules of :mod:`fromsource.build.archive_rules`, which
    do not know the archive's name; the unpacker re-raises it as an
    UnsafeArchiveError naming the archive.  ``reason`` completes a sentence
    whose subject is the member ("is an absolute path").
    """

    def __init__(self, member: str | None, reason: str) -> None:
        subject = f"member {member!r}" if member is not None else "the archive"
        super().__init__(f"{subject} {reason}; the sdist is refused", member=member, reason=reason)
        self.member = member
        self.reason = reason


class DependencyError(BuildError):
    """Build requirements are unusable or cannot be resolved to wheels."""


class HookError(BuildError):
    """A build step failed inside the sandbox (the backend, the venv or the install)."""


class SandboxError(BuildError):
    """The build sandbox could not be set up or the build broke its limits."""


class SandboxTimeoutError(SandboxError):
    """A sandboxed command ran past its wall-clock limit and was killed."""


class DisagreementError(BuildError):
    """Independent builds that had to agree made different wheels (category
    ``irreproducible``, issue 17); nothing was published."""


class ProvenanceError(FromsourceError):
    """An SBOM or attestation could not be made, read or verified."""


class SignatureError(ProvenanceError):
    """A DSSE signature did not verify against any trusted key."""


class RemediateError(FromsourceError):
    """An advisory or patch series could not be read or applied."""


class PatchError(RemediateError):
    """A patch hunk did not apply."""


class VerifyError(FromsourceError):
    """verify could not read its input (an operational error, not a finding)."""


class LockError(FromsourceError):
    """A lock file could not be read, understood or written, or the index could not be asked."""


class PolicyError(FromsourceError):
    """A policy rule or purl is malformed, or names a rule that does not exist."""
