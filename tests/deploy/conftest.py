from typing import Any

import pytest
from cli_invocations import autonat_click_group, ray_click_group


@pytest.fixture(scope="session")
def autonat_cli() -> Any:
    """The Click group of the ``autonat-search`` console script."""
    return autonat_click_group()


@pytest.fixture(scope="session")
def ray_cli() -> Any:
    """The Click group of Ray's ``ray`` command."""
    return ray_click_group()
