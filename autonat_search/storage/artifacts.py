"""Artifact stores (sample grids, schedule plots) through Optuna's public artifact API.

A study's artifact location is an absolute folder (``FileSystemArtifactStore``) or
``s3://bucket/prefix`` (``Boto3ArtifactStore``, S3 and S3-compatible stores: boto3 reads its
credentials and ``AWS_ENDPOINT_URL`` from the environment). Optuna's S3 store has no key
prefix, so ``PrefixedStore`` adds one. ``FirstFoundStore`` reads from several stores, for a
dashboard over studies with different stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from optuna.artifacts import Boto3ArtifactStore, FileSystemArtifactStore
from optuna.artifacts.exceptions import ArtifactNotFound

from autonat_search.errors import ConfigError

__all__ = [
    "ArtifactStore",
    "FirstFoundStore",
    "PrefixedStore",
    "open_artifact_store",
    "split_s3_location",
]


class ArtifactStore(Protocol):
    """What Optuna and optuna-dashboard call on a store."""

    def open_reader(self, artifact_id: str) -> BinaryIO: ...

    def write(self, artifact_id: str, content_body: BinaryIO) -> None: ...

    def remove(self, artifact_id: str) -> None: ...


class PrefixedStore:
    """Every artifact id of ``store`` prefixed (``prefix/id``): a folder inside a bucket."""

    def __init__(self, store: ArtifactStore, prefix: str) -> None:
        self.store = store
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def open_reader(self, artifact_id: str) -> BinaryIO:
        return self.store.open_reader(self.prefix + artifact_id)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self.store.write(self.prefix + artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        self.store.remove(self.prefix + artifact_id)


class FirstFoundStore:
    """Reads an artifact from the first of ``stores`` that has it; writes to the first."""

    def __init__(self, stores: Sequence[ArtifactStore]) -> None:
        if not stores:
            raise ValueError("FirstFoundStore needs at least one store")
        self.stores = list(stores)

    def open_reader(self, artifact_id: str) -> BinaryIO:
        for store in self.stores:
            try:
                return store.open_reader(artifact_id)
            except ArtifactNotFound:
                continue
        raise ArtifactNotFound(f"artifact {artifact_id} is in none of {len(self.stores)} stores")

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self.stores[0].write(artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        for store in self.stores:
            try:
                store.remove(artifact_id)
            except ArtifactNotFound:
                continue


def split_s3_location(location: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix")``."""
    scheme, _, rest = location.partition("://")
    bucket, _, prefix = rest.partition("/")
    if scheme != "s3" or not bucket:
        raise ConfigError(f"not an s3://bucket/prefix artifact store: {location!r}")
    return bucket, prefix.strip("/")


def open_artifact_store(
    location: str, *, create: bool = True, s3_client: Any = None
) -> ArtifactStore:
    """The store at ``location``: an absolute folder (created unless ``create`` is False, for
    readers) or ``s3://bucket/prefix``."""
    if location.startswith("s3://"):
        bucket, prefix = split_s3_location(location)
        try:
            store: ArtifactStore = Boto3ArtifactStore(bucket, client=s3_client)
        except ImportError:
            raise ConfigError(f"artifact store {location} needs boto3: pip install boto3") from None
        return PrefixedStore(store, prefix) if prefix else store
    if "://" in location:
        raise ConfigError(f"unsupported artifact store {location!r}: a folder or s3://...")
    folder = Path(location)
    if not create:
        return FileSystemArtifactStore(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"artifact store {folder}: {error.strerror}") from None
    return FileSystemArtifactStore(folder)
