"""The ``autonat-search`` Typer application: global options, every command registered."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from autonat_search.cli import dashboard_command, job_commands, model_commands, study_commands
from autonat_search.cli.errors import run_reporting_errors

__all__ = ["app", "run"]

app = typer.Typer(
    name="autonat-search",
    help="Search generation strategies of masked image transformers for the lowest FID.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Click's plain help: flags without a type (Typer's rich help shows `--json <bool>`).
    rich_markup_mode=None,
)
_state = {"debug": False}


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show every error's full traceback and causes.")
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log what the service does (INFO).")
    ] = False,
) -> None:
    _state["debug"] = debug
    logging.basicConfig(
        level=logging.INFO if verbose or debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


app.command("start-study")(study_commands.start_study)
app.command("worker")(study_commands.worker)
app.command("status")(study_commands.status)
app.command("export-best-strategy")(study_commands.export_best_strategy)
app.command("export-trials")(study_commands.export_trials)
app.command("dashboard")(dashboard_command.dashboard)
app.command("evaluate")(job_commands.evaluate)
app.command("demo")(job_commands.demo)
app.command("pretrain")(model_commands.pretrain)
app.command("tokenize")(model_commands.tokenize)
app.command("fid-stats")(model_commands.fid_stats)
app.command("build-digits-demo")(model_commands.build_digits_demo)


def run() -> None:
    """Console entry point: every expected error is one line on stderr and exit code 1."""
    # Ray folds lines that look alike from several actors into one "[repeated Nx across
    # cluster]", which would hide most per-trial progress lines; it reads this when imported.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    run_reporting_errors(lambda: app(standalone_mode=False), debug=lambda: _state["debug"])
