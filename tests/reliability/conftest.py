import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # fake_trials, postgres_cluster

from postgres_cluster import PrivatePostgres  # noqa: E402


@pytest.fixture(scope="module")
def private_postgres():
    """A PostgreSQL cluster of this test module alone, on its own port: stopped and
    restarted on purpose by the tests, removed at the end."""
    cluster = PrivatePostgres()
    try:
        yield cluster
    finally:
        cluster.remove()
