from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# A copy of ../shared/reference (data produced by the reference implementation), so that a
# clone anywhere carries its golden vectors.
REFERENCE_DIR = REPO_ROOT / "tests" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return REFERENCE_DIR
