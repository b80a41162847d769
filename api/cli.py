"""The `nas` console script: the engine's commands (nas.cli) plus the service's (serve, worker, submit,
status, cancel, users), composed here at the top layer so that importing `nas` never imports the service."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError
from rich.table import Table

from api.client import Client
from nas.cli import app, console, fail
from nas.schemas import load_search_config
from nas.settings import Settings
from search_spaces import UserError
from search_spaces.errors import field_messages

users_app = typer.Typer(help="Manage users on a server.", no_args_is_help=True)
app.add_typer(users_app, name="users")


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", help="bind address"),
    port: int = typer.Option(8000, help="port"),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="runs, uploads, SQLite file (NAS_DATA_DIR)"),
    demo: bool = typer.Option(False, "--demo", help="queue the default digits search if there is none yet"),
    show_token: bool = typer.Option(False, "--show-token", help="print the admin token saved in the data dir"),
) -> None:
    """Run the API, the dispatcher and a local Ray (or NAS_RAY_ADDRESS's cluster) on one machine."""
    from api.server import serve as run_server  # the web stack loads only for this command

    try:
        settings = Settings()
        if data_dir:
            settings = settings.model_copy(update={"data_dir": data_dir})
    except ValidationError as err:
        raise UserError(f"bad NAS_* setting: {'; '.join(field_messages(err))}") from None
    run_server(settings, host, port, demo=demo, show_saved_token=show_token)


@app.command("worker")
def worker(
    address: str | None = typer.Option(None, help="the Ray head (default NAS_RAY_ADDRESS)"),
) -> None:
    """Join a Ray cluster as a worker node and run the searches it is given."""
    import os
    import subprocess

    head = address or os.environ.get("NAS_RAY_ADDRESS")
    if not head:
        raise fail("give --address or set NAS_RAY_ADDRESS to the Ray head (host:port)")
    # the node's workers run at NAS_WORKER_NICENESS too (Ray's raylet reads RAY_worker_niceness)
    env = {"RAY_worker_niceness": str(Settings().worker_niceness)} | os.environ
    raise typer.Exit(subprocess.call(["ray", "start", f"--address={head}", "--block"], env=env))


def _client(url: str | None, token: str | None) -> Client:
    return Client(url, token)


URL = typer.Option(None, "--url", help="server URL (default NAS_URL or http://127.0.0.1:8000)")
TOKEN = typer.Option(None, "--token", help="API token (default NAS_TOKEN)")


@app.command("submit")
def submit(config_path: Path = typer.Argument(..., metavar="CONFIG.yaml"), name: str = "",
           url: str | None = URL, token: str | None = TOKEN) -> None:
    """Queue a search on a server (an npz dataset is uploaded first)."""
    config = load_search_config(config_path)
    client = _client(url, token)
    if config.dataset.name == "npz" and config.dataset.path:
        config.dataset.path = client.upload_dataset(Path(config.dataset.path))
    out = client.submit(config.model_dump(mode="json", exclude_none=True), name=name or config_path.stem)
    console.print(f"queued search {out['id']}")


@app.command("status")
def status(search_id: str | None = typer.Argument(None), url: str | None = URL, token: str | None = TOKEN) -> None:
    """One search's status, or a table of yours."""

    client = _client(url, token)
    rows = [client.search(search_id)] if search_id else client.searches()
    table = Table("name", "status", "phase", "progress", "attempt", "best accuracy", "error")
    table.add_column("id", no_wrap=True, min_width=36)  # whole, so that it can be pasted back
    for r in rows:
        table.add_row(r["name"], r["status"], r["phase"], f"{100 * r['progress']:.0f}%", str(r["attempt"]),
                      f"{r['best'].get('accuracy', 0):.4f}" if r["best"] else "", (r["error"] or "")[:60], r["id"])
    console.print(table)


@app.command("cancel")
def cancel(search_id: str, url: str | None = URL, token: str | None = TOKEN) -> None:
    """Cancel a search (a running one stops within seconds and keeps what it found)."""

    out = _client(url, token).cancel(search_id)
    console.print(f"search {search_id}: {out['status']}{' (stopping)' if out['cancel_requested'] else ''}")


@users_app.command("create")
def users_create(name: str, admin: bool = typer.Option(False, "--admin"), url: str | None = URL,
                 token: str | None = TOKEN) -> None:
    """Create a user (needs an admin token); prints the new user's token once."""

    out = _client(url, token).create_user(name, admin)
    print(f"user {out['name']} token: {out['token']}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
