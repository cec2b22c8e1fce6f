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
    from nat_core.tiny_bundle import write_tiny_bundle

    return write_tiny_bundle(tmp_path_factory.mktemp("tiny_bundle"), reference_samples=16)
