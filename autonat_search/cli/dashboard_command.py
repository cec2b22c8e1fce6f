"""``autonat-search dashboard``: optuna-dashboard on the studies' storage and artifact store."""

from __future__ import annotations

from typing import Annotated

import typer

from autonat_search.cli.options import StorageOpt

__all__ = ["dashboard"]


def dashboard(
    storage: StorageOpt = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 exposes the dashboard to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 8080,
    artifacts: Annotated[
        str | None,
        typer.Option(
            help="Artifact store (a folder or s3://bucket/prefix); default: the stores the "
            "studies were created with."
        ),
    ] = None,
) -> None:
    """Serve optuna-dashboard for the studies in the storage, with their sample grids."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from optuna_dashboard import wsgi

    from autonat_search import records
    from autonat_search.errors import ConfigError, StorageError
    from autonat_search.storage import guarded, open_storage, redact, resolve_storage_url
    from autonat_search.storage.artifacts import (
        ArtifactStore,
        FirstFoundStore,
        open_artifact_store,
    )
    from autonat_search.storage.rdb import sqlite_file

    url = resolve_storage_url(storage)
    database = sqlite_file(url)
    if database is not None and not database.is_file():
        raise StorageError(f"no store at {database}: nothing to show (give --storage URL)")
    rdb = open_storage(url)
    if artifacts:
        locations = [artifacts]
    else:
        import optuna

        summaries = guarded(lambda: optuna.get_all_study_summaries(rdb), url)
        found = (records.read_artifact_store(summary) for summary in summaries)
        locations = list(dict.fromkeys(location for location in found if location))
    stores: list[ArtifactStore] = [open_artifact_store(x, create=False) for x in locations]
    store = None if not stores else stores[0] if len(stores) == 1 else FirstFoundStore(stores)

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per request would flood the terminal

    try:
        server = make_server(
            host, port, wsgi(rdb, artifact_store=store), handler_class=QuietHandler
        )
    except OSError as error:
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    shown_host = f"[{host}]" if ":" in host else host
    typer.echo(f"optuna-dashboard on {redact(url)}")
    typer.echo(f"artifacts: {', '.join(locations) if locations else 'none'}")
    typer.echo(f"open http://{shown_host}:{server.server_port}/dashboard (Ctrl+C stops it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("dashboard stopped")
    finally:
        server.server_close()
