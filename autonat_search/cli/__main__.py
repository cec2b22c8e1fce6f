"""``python -m autonat_search.cli`` (also under ``torchrun``)."""

from autonat_search.cli.app import run

run()
