"""Checking that a bundle on this node is the one a study recorded when it was created."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from autonat_search import records
from autonat_search.errors import BundleMismatchError
from nat_core.bundle_file import read_bundle

__all__ = ["check_fingerprint", "study_bundle"]


def check_fingerprint(path: Path, recorded: dict[str, Any]) -> None:
    """Raise ``BundleMismatchError`` naming what differs: the file's content or one file."""
    actual = read_bundle(path).fingerprint()
    if actual == recorded:
        return
    if actual["content"] != recorded["content"]:
        raise BundleMismatchError(f"bundle {path} differs from the study's bundle file")
    for role, info in recorded["files"].items():
        if actual["files"].get(role) != info:
            raise BundleMismatchError(
                f"bundle {path}: {role} differs from the file the study recorded "
                f"(size {info['size']}, sha256 {info['sha256'][:12]}...)"
            )
    raise BundleMismatchError(f"bundle {path} differs from the study's bundle")


def study_bundle(study: optuna.Study, local_copy: Path | None = None) -> Path:
    """The study's bundle file (or this node's ``local_copy`` of it), checked against the
    study's fingerprint."""
    path = local_copy or records.read_bundle_path(study)
    check_fingerprint(path, records.read_fingerprint(study))
    return path
