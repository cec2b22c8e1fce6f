from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# A copy of ../shared/reference (data produced by the reference implementation), so that a
# clone anywhere carries its golden vectors.
REFERENCE_DIR = REPO_ROOT / "tests" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE_DIR


@pytest.fixture(scope="session")
def tiny_bundle_path(tmp_path_factory) -> Path:
    """The tiny random-weight bundle (real VQGAN and Inception architectures), written once."""
    from nat_core.testing.tiny_bundle import write_tiny_bundle

    return write_tiny_bundle(tmp_path_factory.mktemp("tiny_bundle"), reference_samples=16)


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray cluster for the test session (about 4 s to start)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def quick_digits_bundle(tmp_path_factory):
    """The digits-demo bundle built in its quick mode: fast, loadable, meaningless FIDs."""
    from nat_core.digits.build import build_digits_demo

    return build_digits_demo(tmp_path_factory.mktemp("digits"), quick=True, progress=False)


PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    import uuid

    import sqlalchemy

    name = f"autonat_test_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["postgres", "sqlite"])
def storage_url(request, tmp_path):
    """Each storage test runs against the real PostgreSQL and the embedded SQLite store."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path / 'studies.db'}"


# Markers follow from what a test uses, so that none can be forgotten: a test that takes a
# PostgreSQL fixture is `postgres`, one that takes a Ray fixture is `ray`. A test whose
# subprocess starts Ray (a `worker`, the demo) is marked `ray` by hand, as are `slow` and `gpu`.
# Quick loop: ./run test -m "not slow".
_FIXTURE_MARKERS = {
    "postgres_url": "postgres",
    "private_postgres": "postgres",
    "ray_session": "ray",
    "ray_cluster": "ray",
}


@pytest.hookimpl(tryfirst=True)  # before -m deselects by these markers
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for fixture, marker in _FIXTURE_MARKERS.items():
            if fixture in names:
                item.add_marker(marker)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("storage_url") == "postgres":
            item.add_marker("postgres")
