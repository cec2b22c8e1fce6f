"""Artifact stores: folders, prefixes inside a bucket, several stores read as one."""

import io

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound

from autonat_search.errors import ConfigError
from autonat_search.storage import artifacts as artifacts_module
from autonat_search.storage.artifacts import (
    FirstFoundStore,
    PrefixedStore,
    open_artifact_store,
    split_s3_location,
)


def test_a_folder_store_is_created_for_writers_and_not_for_readers(tmp_path):
    reader = open_artifact_store(str(tmp_path / "read"), create=False)
    with pytest.raises(ArtifactNotFound):
        reader.open_reader("x")
    assert not (tmp_path / "read").exists()
    writer = open_artifact_store(str(tmp_path / "write"))
    writer.write("abc", io.BytesIO(b"png"))
    assert (tmp_path / "write" / "abc").read_bytes() == b"png"


def test_a_prefix_puts_every_artifact_in_its_folder(tmp_path):
    (tmp_path / "runs" / "a").mkdir(parents=True)
    store = PrefixedStore(FileSystemArtifactStore(tmp_path), "runs/a/")
    store.write("id-1", io.BytesIO(b"grid"))
    assert (tmp_path / "runs" / "a" / "id-1").read_bytes() == b"grid"
    assert store.open_reader("id-1").read() == b"grid"
    store.remove("id-1")
    assert not (tmp_path / "runs" / "a" / "id-1").exists()


def test_first_found_store_reads_from_whichever_store_has_the_artifact(tmp_path):
    first, second = (FileSystemArtifactStore(tmp_path / n) for n in ("a", "b"))
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    second.write("only-in-b", io.BytesIO(b"b"))
    both = FirstFoundStore([first, second])
    assert both.open_reader("only-in-b").read() == b"b"
    with pytest.raises(ArtifactNotFound, match="in none of 2 stores"):
        both.open_reader("nowhere")


def test_s3_locations_split_into_bucket_and_prefix_and_need_boto3(monkeypatch):
    assert split_s3_location("s3://bucket/runs/x/") == ("bucket", "runs/x")
    assert split_s3_location("s3://bucket") == ("bucket", "")
    with pytest.raises(ConfigError, match="not an s3://bucket/prefix"):
        split_s3_location("s3:///x")

    def without_boto3(*args, **kwargs):
        raise ImportError("No module named 'boto3'")  # what Optuna's store raises then

    monkeypatch.setattr(artifacts_module, "Boto3ArtifactStore", without_boto3)
    with pytest.raises(ConfigError, match="needs boto3: pip install boto3"):
        open_artifact_store("s3://bucket/prefix")
    with pytest.raises(ConfigError, match="unsupported artifact store 'gs://b'"):
        open_artifact_store("gs://b")


def test_an_s3_store_keeps_a_trials_artifacts_under_its_prefix(monkeypatch, tmp_path):
    """Against moto's in-process S3: what a worker uploads, the dashboard's reader reads."""
    import boto3
    import moto

    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    grid = tmp_path / "sample_grid.png"
    grid.write_bytes(b"\x89PNG grid")
    with moto.mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket="grids")
        writer = open_artifact_store("s3://grids/runs/demo/")
        trial = optuna.create_study().ask()
        artifact_id = upload_artifact(
            artifact_store=writer, file_path=str(grid), study_or_trial=trial
        )
        keys = [o["Key"] for o in client.list_objects_v2(Bucket="grids")["Contents"]]
        assert keys == [f"runs/demo/{artifact_id}"]
        reader = open_artifact_store("s3://grids/runs/demo", create=False)
        assert reader.open_reader(artifact_id).read() == b"\x89PNG grid"
        with pytest.raises(ArtifactNotFound):
            reader.open_reader("no-such-artifact")
