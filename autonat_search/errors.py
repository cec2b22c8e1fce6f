"""The service's one exception hierarchy; the CLI turns each into a one-line message."""

from __future__ import annotations

__all__ = [
    "AutonatError",
    "BundleMismatchError",
    "ConfigError",
    "StorageError",
    "StudyError",
    "TooManyFailures",
    "TrialFailure",
]


class AutonatError(Exception):
    """Base of every error the service reports to its user."""


class ConfigError(AutonatError, ValueError):
    """A study file or command-line value that is malformed; the message names it."""


class StudyError(AutonatError):
    """A study that is missing, or differs from the config given for its name."""


class StorageError(AutonatError):
    """The storage could not be reached or used (converted once, at the storage boundary)."""


class BundleMismatchError(AutonatError):
    """A worker's bundle differs from the one the study recorded."""


class TooManyFailures(AutonatError):
    """Every recent trial on a worker failed: the worker is broken, not the strategies."""


class TrialFailure(AutonatError):
    """A trial that cannot produce a value (non-finite FID); recorded FAILED with a reason."""
