"""`nas serve`: migrate, make sure an admin exists (printing its token once), run the API and workers."""

from __future__ import annotations

import logging
from types import FrameType

import uvicorn

from api.app import create_app
from nas.settings import Settings
from nas.store import repo


def bootstrap_admin(app_db, settings: Settings) -> str | None:
    """On an empty database create the admin; returns the token to print (None if users exist)."""
    with app_db.session() as s:
        if repo.count_users(s) > 0:
            return None
        _, token = repo.create_user(s, name="admin", is_admin=True, token=settings.admin_token)
    return token


TOKEN_FILE = "admin-token"


def remember_token(settings: Settings, token: str) -> None:
    """Keep a generated admin token in the data dir (owner-only), so `make run` can show it again."""
    path = settings.data_dir / TOKEN_FILE
    path.touch(mode=0o600)
    path.write_text(token + "\n")


def queue_demo(app_db, settings: Settings) -> str | None:
    """Queue the default digits search for the admin, on a server that has none yet; returns its id."""
    from nas.schemas import SearchConfig

    with app_db.session() as s:
        admin = repo.user_by_name(s, "admin")
        if admin is None or repo.list_jobs(s, owner=admin, kind="search", limit=1)[1]:
            return None
        config = SearchConfig.model_validate({"space": "hybrid-small", "dataset": {"name": "digits"},
                                              "budget": {"minutes": 5}})  # configs/default.yaml: a quick look
        job, _ = repo.submit_job(s, owner_id=admin.id, config=config.model_dump(mode="json"), name="demo: digits",
                                 max_attempts=settings.max_attempts)
        return job.id


def quiet_logs() -> None:
    """The product's own loggers at INFO; third-party ones (onnxscript, onnx_ir, torch, Ray) at WARNING."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for ours in ("api", "workers", "nas"):
        logging.getLogger(ours).setLevel(logging.INFO)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, demo: bool = False,
          show_saved_token: bool = False) -> None:
    quiet_logs()
    app = create_app(settings)
    token = bootstrap_admin(app.state.db, settings)
    if token is not None:
        print(f"admin token: {token}", flush=True)
        if not settings.admin_token:
            remember_token(settings, token)
    elif show_saved_token and (settings.data_dir / TOKEN_FILE).exists():
        print(f"admin token: {(settings.data_dir / TOKEN_FILE).read_text().strip()}", flush=True)
    if demo and (demo_id := queue_demo(app.state.db, settings)):
        print(f"queued the demo search {demo_id} (hybrid-small on digits)", flush=True)
    where = (f"serving on http://{host}:{port}  (data: {settings.data_dir.resolve()}, database: "
             f"{'SQLite' if settings.db_url.startswith('sqlite') else 'PostgreSQL'})")
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    AnnouncingServer(config, where).run()  # SIGTERM and Ctrl-C: graceful (running jobs go back to the queue)
    print("stopped", flush=True)


class AnnouncingServer(uvicorn.Server):
    """Prints where it serves once it really answers (after the workers and Ray have started); SIGTERM and
    Ctrl-C shut it down gracefully and end with exit code 0."""

    def __init__(self, config: uvicorn.Config, message: str):
        super().__init__(config)
        self.message = message

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # a graceful shutdown is a normal end: exit 0 rather than re-raising the signal afterwards
        self._captured_signals.clear()

    async def startup(self, sockets: list | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(self.message, flush=True)
