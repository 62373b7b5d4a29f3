"""One exception hierarchy for the whole provider.

Every error carries a one-line message that names the value that is wrong and where.
The CLI maps :class:`MLSecOpsError` to exit code 2 ("could not check"), so a check that
cannot decide fails closed.
"""

from __future__ import annotations


class MLSecOpsError(Exception):
    """Base class: something could not be checked or done."""


class ConfigError(MLSecOpsError):
    """A setting, connection or environment variable is missing or invalid."""


class PolicyError(ConfigError):
    """A policy file is malformed; the message names the field."""


class StorageError(MLSecOpsError):
    """A URI cannot be read or written (unknown scheme, missing object, no access)."""


class NotFoundError(StorageError):
    """The URI names no object: a wrong path, key or bucket (retrying will not help)."""


class DigestMismatchError(StorageError):
    """The bytes read from a URI do not have the digest the caller expected."""

    def __init__(self, uri: str, expected: str, actual: str) -> None:
        super().__init__(
            f"digest mismatch for {uri}: expected sha256:{expected}, got sha256:{actual}"
        )
        self.uri = uri
        self.expected = expected
        self.actual = actual


class DataError(MLSecOpsError):
    """A dataset cannot be parsed or is unusable (empty, unknown format, missing column)."""


class LineageError(MLSecOpsError):
    """MLflow could not be reached or refused a lineage record."""


class DependencyAuditError(MLSecOpsError):
    """Dependencies or advisories could not be read (e.g. an unpinned requirement)."""


class AdvisorySourceError(DependencyAuditError):
    """The advisory service could not be reached or gave no usable answer (may be retried)."""


class SignatureError(MLSecOpsError):
    """A signature, envelope or key does not verify (or cannot be checked): a failure."""


class AuditLogError(MLSecOpsError):
    """The audit log's chain is broken, or the log cannot be read or written."""


class ConcurrentUpdateError(MLSecOpsError):
    """Someone else changed the object between our read and our write (compare-and-set)."""


class UnsafeModelError(MLSecOpsError):
    """The model did not pass the scan (or could not be scanned), so it was not loaded."""
