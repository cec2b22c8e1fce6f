"""The one place where errors become what a user reads: one line on stderr, an exit code.

Only the project's own error types are the user's errors (``USER_ERRORS``: the service's
``AutonatError`` hierarchy and the named ``ValueError`` subclasses of ``nat_core``); they are
one line, ``error: ...``, exit code 1. Anything else is a bug: its traceback, then a line
asking for a report, exit code 1. ``--debug`` shows every error's whole chain, including
causes that ``raise ... from None`` hides from Python's own display.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

import typer

from autonat_search.errors import AutonatError

__all__ = ["BUG_REPORT_LINE", "format_chain", "run_reporting_errors", "user_error_types"]

BUG_REPORT_LINE = (
    "autonat-search failed on an unexpected error (a bug, not your input): "
    "please report it with the traceback above"
)


_NAT_CORE_ERRORS = {
    "nat_core.schema": "SchemaError",
    "nat_core.strategy": "StrategyError",
    "nat_core.bundle_file": "BundleError",
    "nat_core.checkpoints": "CheckpointMismatchError",
    "nat_core.fid.reference": "ReferenceStatsError",
    "nat_core.fid.network": "FeatureWeightsError",
}


def user_error_types() -> tuple[type[BaseException], ...]:
    """The error types shown as one line. nat_core's are looked up among the loaded modules
    (a module that is not loaded cannot have raised its error), so that classifying an
    error imports nothing."""
    found: list[type[BaseException]] = [AutonatError]
    for module_name, name in _NAT_CORE_ERRORS.items():
        module = sys.modules.get(module_name)
        if module is not None:
            found.append(getattr(module, name))
    return tuple(found)


def format_chain(error: BaseException) -> str:
    """Every exception of the chain, outermost last as Python prints it, ``from None`` or not."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    parts = []
    for index, exception in enumerate(reversed(chain)):
        if index:
            parts.append("\nwhich led to:\n\n")
        parts.extend(traceback.format_exception(exception, chain=False))
    return "".join(parts)


def run_reporting_errors(command: Callable[[], object], *, debug: Callable[[], bool]) -> None:
    """Run ``command``: a usage error as Click shows it (exit code 2), a user error as
    ``error: ...`` (exit code 1), a bug as its traceback and a request for a report
    (exit code 1), Ctrl-C 130. With ``debug()`` every error shows its whole chain."""
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
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as error:
        user_types = user_error_types()
        user_error = isinstance(error, user_types)
        cause = getattr(error, "cause", None)  # a Ray task error: the actor's own exception
        shown = cause if isinstance(cause, user_types) else error
        if debug():
            typer.echo(format_chain(error), err=True, nl=False)
        elif not user_error:
            traceback.print_exception(error)
        if user_error:
            typer.echo(f"error: {' '.join(str(shown).split())}", err=True)
        else:
            typer.echo(BUG_REPORT_LINE, err=True)
        sys.exit(1)
