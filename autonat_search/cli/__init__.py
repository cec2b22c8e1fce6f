"""The ``autonat-search`` command line: ``app`` (Typer) and ``run`` (the console entry point).

Commands live in ``study_commands`` (start-study, worker, status, exports), ``job_commands``
(evaluate, demo) and ``model_commands`` (pretrain, tokenize, fid-stats, build-digits-demo);
``options`` holds shared options and ``errors`` turns errors into one-line messages.
"""

from autonat_search.cli.app import app, run

__all__ = ["app", "run"]
