"""Live event streams over a real HTTP server (uvicorn in a thread, no workers: a queued search's stream
stays open): each user may hold only NAS_MAX_STREAMS_PER_USER of them at once."""

import threading
import time
from contextlib import ExitStack

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.server import bootstrap_admin
from nas.settings import Settings
from tests.e2e.server import free_port

PER_USER = 2


@pytest.fixture
def live(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", admin_token="nas_admin", max_streams_per_user=PER_USER)
    app = create_app(settings, run_workers=False)
    bootstrap_admin(app.state.db, settings)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the test server did not start"
        time.sleep(0.05)
    yield app, f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(timeout=30)


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _open_stream(stack: ExitStack, client: httpx.Client, search_id: str) -> httpx.Response:
    """An event stream, open and delivering (its first event read; the line iterator is kept with the
    response, since dropping it would close the stream)."""
    r = stack.enter_context(client.stream("GET", f"/api/v1/searches/{search_id}/events"))
    if r.status_code == 200:
        r.lines = r.iter_lines()  # type: ignore[attr-defined]
        assert next(r.lines).startswith("id: ")  # type: ignore[attr-defined]
    return r


def test_a_user_holds_at_most_the_allowed_streams(live):
    app, url = live
    admin = _client(url, "nas_admin")
    alice = _client(url, admin.post("/api/v1/users", json={"name": "alice"}).json()["token"])
    search = alice.post("/api/v1/searches", json={"space": "hybrid-tiny", "dataset": {"name": "digits"}}).json()["id"]
    own = admin.post("/api/v1/searches", json={"space": "hybrid-tiny", "dataset": {"name": "digits"}}).json()["id"]
    with ExitStack() as first:
        for _ in range(PER_USER):
            assert _open_stream(first, alice, search).status_code == 200
        with ExitStack() as extra:
            over = _open_stream(extra, alice, search)
            assert over.status_code == 429, over.status_code
            over.read()
            assert over.status_code == 429 and over.headers["Retry-After"]
            assert "event streams" in over.json()["detail"]
        with ExitStack() as other:  # another user's streams count apart
            assert _open_stream(other, admin, own).status_code == 200
    # closed streams give their slots back (once the server notices the disconnect)
    deadline = time.monotonic() + 30
    while app.state.streams.held(1) or app.state.streams.held(2):
        assert time.monotonic() < deadline, "closed streams were never given back"
        time.sleep(0.1)
    with ExitStack() as again:
        for _ in range(PER_USER):
            assert _open_stream(again, alice, search).status_code == 200
