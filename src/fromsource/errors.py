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


class AuthError(FromsourceError):
    """Token handling failed (unknown token, bad expiry, ...)."""


class BuildError(FromsourceError):
    """The build pipeline failed for a package."""


class UpstreamError(BuildError):
    """The upstream index could not give us a usable sdist."""


class UnsafeArchiveError(BuildError):
    """An sdist holds a member that would escape or abuse the work tree."""


class SandboxError(BuildError):
    """The build sandbox could not be set up or the build broke its limits."""


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
