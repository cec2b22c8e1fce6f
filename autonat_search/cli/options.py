"""Command-line options shared by several commands (Typer ``Annotated`` aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from autonat_search.storage import STORAGE_ENV

__all__ = ["CpuActorsOpt", "DeviceOpt", "OutOpt", "RayAddressOpt", "StorageOpt", "StudyOpt"]

StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        envvar=STORAGE_ENV,
        show_envvar=True,
        help="Storage URL (postgresql+psycopg2://... or sqlite:///file.db); "
        "default: the embedded sqlite:///autonat-search.db",
    ),
]
StudyOpt = Annotated[str, typer.Option("--study", "-s", help="Study name.")]
RayAddressOpt = Annotated[
    str | None, typer.Option("--ray-address", help="Ray cluster to join; default: start one.")
]
CpuActorsOpt = Annotated[
    int, typer.Option("--cpu-actors", help="CPU actors where the study runs on the CPU.")
]
OutOpt = Annotated[Path, typer.Option("--output", "-o", help="File to write.")]
DeviceOpt = Annotated[str | None, typer.Option(help="cpu, cuda or cuda:N (default: cuda if any)")]
