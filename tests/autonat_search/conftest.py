import pytest


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
