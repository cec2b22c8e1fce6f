"""Command-line options shared by several commands (Typer ``Annotated`` aliases)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from autonat_search.storage import STORAGE_ENV, STORAGE_FILE_ENV, url_has_password

__all__ = ["CpuActorsOpt", "DeviceOpt", "OutOpt", "RayAddressOpt", "StorageOpt", "StudyOpt"]


def _no_password_on_the_command_line(ctx: typer.Context, value: str | None) -> str | None:
    """Refuse a storage URL with a password typed as ``--storage``: every user of the machine
    can read a command line (ps, /proc, shell history, job logs). The environment or a file
    may carry one."""
    source = ctx.get_parameter_source("storage")
    if value and source is not None and source.name == "COMMANDLINE" and url_has_password(value):
        raise typer.BadParameter(
            f"the URL carries a password, which must not be on a command line; put the URL "
            f"in {STORAGE_ENV} or in a file named by {STORAGE_FILE_ENV}, or the password in "
            "PGPASSWORD or ~/.pgpass"
        )
    return value


StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        envvar=STORAGE_ENV,
        show_envvar=True,
        callback=_no_password_on_the_command_line,
        help="Storage URL (postgresql+psycopg2://user@host/db or sqlite:///file.db), without "
        f"a password (refused here: use {STORAGE_ENV}, {STORAGE_FILE_ENV}, PGPASSWORD or "
        "~/.pgpass); default: the URL in the file $"
        f"{STORAGE_FILE_ENV}, else the embedded sqlite:///autonat-search.db",
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


def _torch_device(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"cpu|cuda(:\d+)?", value):
        raise typer.BadParameter(f"{value!r} is not cpu, cuda or cuda:N")
    return value


DeviceOpt = Annotated[
    str | None,
    typer.Option(callback=_torch_device, help="cpu, cuda or cuda:N (default: cuda if any)."),
]
