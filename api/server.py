"""`nas serve`: migrate, make sure an admin exists (printing its token once), run the API and workers."""

from __future__ import annotations

import logging

import uvicorn

from api.app import create_app
from api.settings import Settings
from nas.store import repo


def bootstrap_admin(app_db, settings: Settings) -> str | None:
    """On an empty database create the admin; returns the token to print (None if users exist)."""
    with app_db.session() as s:
        if repo.count_users(s) > 0:
            return None
        _, token = repo.create_user(s, name="admin", is_admin=True, token=settings.admin_token)
    return token


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app = create_app(settings)
    token = bootstrap_admin(app.state.db, settings)
    if token is not None:
        print(f"admin token: {token}", flush=True)
    print(f"serving on http://{host}:{port}  (data: {settings.data_dir.resolve()}, database: "
          f"{'SQLite' if settings.db_url.startswith('sqlite') else 'PostgreSQL'})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
