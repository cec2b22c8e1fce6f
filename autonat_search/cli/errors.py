"""The one place where errors become what a user reads: one line on stderr, an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer

from autonat_search.errors import AutonatError

__all__ = ["run_reporting_errors"]

_EXPECTED = (AutonatError, ValueError, FileNotFoundError)


def run_reporting_errors(command: Callable[[], object], *, debug: Callable[[], bool]) -> None:
    """Run ``command``: a usage error as Typer shows it (exit code 2), every expected error
    as ``error: ...`` and exit code 1 (a traceback instead when ``debug()``), Ctrl-C 130."""
    try:
        command()
    except typer.TyperException as error:  # Typer's own Click copy raises these
        show = getattr(error, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"Error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except typer.Exit as error:
        sys.exit(error.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except _EXPECTED as error:
        if debug():
            raise
        typer.echo(f"error: {error}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
