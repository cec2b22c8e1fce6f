import pytest

from autonat_search.errors import StorageError
from autonat_search.storage import (
    EMBEDDED_DEFAULT,
    open_storage,
    redact,
    resolve_storage_url,
)
from autonat_search.storage.rdb import sqlite_file


def test_url_resolution_order(monkeypatch, tmp_path):
    # An embedded store's file is made absolute: Ray actors run in another folder.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTONAT_STORAGE", raising=False)
    assert EMBEDDED_DEFAULT == "sqlite:///autonat-search.db"
    assert resolve_storage_url(None) == f"sqlite:///{tmp_path / 'autonat-search.db'}"
    monkeypatch.setenv("AUTONAT_STORAGE", "sqlite:///env.db")
    assert resolve_storage_url(None) == f"sqlite:///{tmp_path / 'env.db'}"
    assert resolve_storage_url("sqlite:///given.db") == f"sqlite:///{tmp_path / 'given.db'}"


def test_redact_hides_the_password():
    shown = redact("postgresql+psycopg2://user:s3cret@db.example:5432/studies")
    assert "s3cret" not in shown and "***" in shown and "db.example" in shown
    assert redact("not a url at all") == "<unparsable storage URL>"


def test_unsupported_and_unusable_urls_are_storage_errors(tmp_path):
    with pytest.raises(StorageError, match="unsupported storage mysql://u:\\*\\*\\*@h/d"):
        open_storage("mysql://u:pw@h/d")
    with pytest.raises(StorageError, match="needs a file"):
        open_storage("sqlite:///:memory:")
    assert sqlite_file(f"sqlite:///{tmp_path / 'a.db'}") == tmp_path / "a.db"
    assert sqlite_file("postgresql+psycopg2://h/d") is None


def test_the_embedded_store_is_created_with_its_folder(tmp_path):
    url = f"sqlite:///{tmp_path / 'nested' / 'studies.db'}"
    storage = open_storage(url)
    assert storage.get_all_studies() == []
    assert (tmp_path / "nested" / "studies.db").is_file()
