"""The REST API in-process (no workers): validation, auth, isolation, limits, and no 5xx on any input."""

import io
import re
import threading
from contextlib import contextmanager
from datetime import timedelta

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.server import bootstrap_admin
from nas.settings import Settings
from nas.store import repo
from nas.store.models import utcnow

MINIMAL = {"space": "hybrid-tiny", "dataset": {"name": "digits"}}


@pytest.fixture
def app(database_url, tmp_path):
    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, admin_token="nas_admin",
                        max_body_bytes=200_000, max_dataset_bytes=1_000_000)
    application = create_app(settings, run_workers=False)
    bootstrap_admin(application.state.db, settings)
    yield application
    application.state.db.dispose()


@pytest.fixture
def admin(app):
    with TestClient(app, headers={"Authorization": "Bearer nas_admin"}) as client:
        yield client


def user_client(app, admin, name):
    token = admin.post("/api/v1/users", json={"name": name}).json()["token"]
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def test_submit_get_list_and_cancel(admin):
    r = admin.post("/api/v1/searches", json=MINIMAL)
    assert r.status_code == 202
    sid = r.json()["id"]
    body = admin.get(f"/api/v1/searches/{sid}").json()
    assert body["status"] == "queued" and body["config"]["budget"]["minutes"] == 15  # defaults filled in
    assert body["config"]["train"]["steps"] is None and body["config"]["finalize"]["init"] == "auto"
    assert admin.get("/api/v1/searches", params={"status": "queued"}).json()["total"] == 1
    assert admin.post(f"/api/v1/searches/{sid}/cancel").json()["status"] == "cancelled"
    again = admin.post(f"/api/v1/searches/{sid}/cancel")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    export = admin.get(f"/api/v1/searches/{sid}/candidates/{'0' * 64}/export")
    assert export.status_code == 404


def test_validation_errors_name_the_field(admin):
    r = admin.post("/api/v1/searches", json={"space": "hybrid-tiny", "dataset": {"name": "mnist"}})
    assert r.status_code == 422
    assert "dataset.name" in r.json()["detail"] and r.json()["errors"][0]["loc"][:3] == ["body", "dataset", "name"]
    r = admin.post("/api/v1/searches", json=MINIMAL | {"space": "hybrid-huge"})
    assert r.status_code == 422 and "unknown preset" in r.json()["detail"]
    r = admin.post("/api/v1/searches", json=MINIMAL | {"train": {"steps": 0}})
    assert r.status_code == 422 and "train.steps" in r.json()["detail"]
    r = admin.post("/api/v1/searches", json={"space": "hybrid-tiny", "dataset": {"name": "npz", "path": "/etc/passwd"}})
    assert r.status_code == 422 and "uploaded datasets" in r.json()["detail"]
    assert r.json()["errors"][0]["loc"] == ["body", "dataset", "path"]  # the field is named, as pydantic's are
    r = admin.post("/api/v1/searches", json=MINIMAL | {"objectives": ["accuracy", "latency_ms"], "hardware": "²"})
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "hardware"]
    r = admin.post("/api/v1/searches", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_configs_the_product_cannot_run_are_refused_at_submission(admin):
    every = ["accuracy", "latency_ms", "params", "macs"]
    r = admin.post("/api/v1/searches", json=MINIMAL | {"objectives": every})
    assert r.status_code == 422 and "'hardware'" in r.json()["detail"]  # latency needs a table
    r = admin.post("/api/v1/searches", json=MINIMAL | {"search": {"strategy": "hillclimb"}})
    assert r.status_code == 422 and "search.strategy" in r.json()["detail"] and "nsga2" in r.json()["detail"]
    r = admin.post("/api/v1/searches", json=MINIMAL | {"objectives": ["accuracy", "params", "macs"]})
    assert r.status_code == 202  # three objectives, or four with a table: the hypervolume handles any number
    r = admin.post("/api/v1/hardware/builds", json={"space": "hybrid-tiny", "backend": "tvm"})
    assert r.status_code == 422 and "backend" in r.json()["detail"] and "onnxruntime" in r.json()["detail"]


def test_jobs_of_every_kind_and_searches_as_their_view(admin):
    build = admin.post("/api/v1/hardware/builds", json={"space": "hybrid-tiny"})
    job_id = build.json()["id"]
    assert build.status_code == 202 and build.headers["location"] == f"/api/v1/jobs/{job_id}"
    search_id = admin.post("/api/v1/searches", json=MINIMAL).json()["id"]
    assert admin.get(f"/api/v1/jobs/{job_id}").json()["kind"] == "latency"
    assert admin.get(f"/api/v1/searches/{job_id}").status_code == 404  # a table build is not a search
    assert [j["id"] for j in admin.get("/api/v1/searches").json()["items"]] == [search_id]
    assert admin.get("/api/v1/jobs").json()["total"] == 2
    assert [j["id"] for j in admin.get("/api/v1/jobs", params={"kind": "latency"}).json()["items"]] == [job_id]
    bad = admin.get("/api/v1/jobs", params={"kind": "bake"})
    assert bad.status_code == 422 and "search" in bad.json()["detail"]
    assert admin.post(f"/api/v1/jobs/{job_id}/cancel").json()["status"] == "cancelled"
    assert admin.post(f"/api/v1/jobs/{job_id}/cancel").status_code == 409
    # ids: a unique prefix of 6+ characters works wherever a whole id does
    assert admin.get(f"/api/v1/searches/{search_id[:8]}").json()["id"] == search_id
    assert admin.get(f"/api/v1/jobs/{job_id[:6]}/events", params={"after": 0}).status_code == 200
    assert admin.get(f"/api/v1/searches/{search_id[:5]}").status_code == 404  # too short to be a prefix


def test_a_write_that_cannot_commit_is_never_answered_with_success(admin):
    from sqlalchemy import event
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    sid = admin.post("/api/v1/searches", json=MINIMAL).json()["id"]

    def busy(session):
        raise OperationalError("COMMIT", {}, Exception("database is locked"))

    event.listen(Session, "before_commit", busy)
    try:
        r = admin.post(f"/api/v1/searches/{sid}/cancel")
        page = admin.post("/login", data={"token": "nas_admin"}, headers={"Accept": "text/html"})
    finally:
        event.remove(Session, "before_commit", busy)
    assert r.status_code == 503 and r.headers["retry-after"] == "2" and "nothing was changed" in r.json()["detail"]
    # the dashboard's form gets a page that says so, not the API's JSON
    assert page.status_code == 503 and "text/html" in page.headers["content-type"]
    assert "database is busy" in page.text and "try again" in page.text
    assert admin.get(f"/api/v1/searches/{sid}").json()["status"] == "queued"  # the cancel did not happen


def test_tokens_can_be_listed_revoked_and_expire(app, admin):
    with user_client(app, admin, "tess") as tess:
        made = tess.post("/api/v1/users/me/tokens", json={"name": "ci", "expires_in_days": 30})
        assert made.status_code == 201 and made.json()["token"].startswith(made.json()["hint"])
        listed = tess.get("/api/v1/users/me/tokens").json()
        assert {t["name"] for t in listed} == {"first token", "ci"} and all("token" not in t for t in listed)
        with TestClient(app, headers={"Authorization": f"Bearer {made.json()['token']}"}) as ci:
            assert ci.get("/api/v1/users/me").json()["name"] == "tess"
            assert tess.delete(f"/api/v1/users/me/tokens/{made.json()['id']}").status_code == 204
            assert ci.get("/api/v1/users/me").status_code == 401  # at once, despite the token cache
        assert admin.delete(f"/api/v1/users/me/tokens/{listed[-1]['id']}").status_code == 404  # not the admin's
    with app.state.db.session() as s:  # an expired token is refused
        user = repo.user_by_name(s, "tess")
        _, old = repo.create_token(s, user_id=user.id, name="old", expires_at=utcnow() - timedelta(seconds=1))
    with TestClient(app, headers={"Authorization": f"Bearer {old}"}) as expired:
        assert expired.get("/api/v1/users/me").status_code == 401


def test_dashboard_cookie_holds_a_session_token_that_logout_revokes(app, admin):
    with TestClient(app) as browser:
        assert browser.post("/login", data={"token": "nas_admin"}, follow_redirects=False).status_code == 303
        cookie = browser.cookies.get("nas_session")
        assert browser.get("/api/v1/users/me").status_code == 200
        assert any(t["name"] == "dashboard session" for t in admin.get("/api/v1/users/me/tokens").json())
        csrf = re.search(r'name="csrf-token" content="([^"]+)"', browser.get("/").text).group(1)
        # the cookie alone cannot change anything (another site can make a browser send it): CSRF token needed
        assert browser.post("/api/v1/searches", json=MINIMAL).status_code == 403
        assert browser.post("/api/v1/searches", json=MINIMAL, headers={"X-CSRF-Token": csrf}).status_code == 202
        assert browser.post("/logout", follow_redirects=False).status_code == 403
        assert browser.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    with TestClient(app, cookies={"nas_session": cookie}) as copied:
        assert copied.get("/api/v1/users/me").status_code == 401  # the old cookie no longer works
    assert admin.get("/api/v1/users/me").status_code == 200  # the API token itself was never in the cookie


def test_a_lost_creation_race_is_a_409_not_a_500(admin, monkeypatch):
    """The check-then-insert of a user name loses to a concurrent request: the unique constraint decides."""
    assert admin.post("/api/v1/users", json={"name": "rita"}).status_code == 201
    monkeypatch.setattr(repo, "user_by_name", lambda s, name: None)  # as if the other insert came after the check
    r = admin.post("/api/v1/users", json={"name": "rita"})
    assert r.status_code == 409 and "already exists" in r.json()["detail"]


@contextmanager
def a_worker_writes_after_each_first_read(engine, worker, sid):
    """After the first SELECT of each transaction on `engine`, another connection (a worker) commits a write,
    as a running search does all the time."""
    from sqlalchemy import event

    writes: list[threading.Thread] = []
    fresh = {"transaction": True}

    def write():
        with worker.session() as w:
            w.execute(repo.update(repo.Job).where(repo.Job.id == sid).values(progress=0.5))

    def on_begin(conn):
        fresh["transaction"] = True

    def after_execute(conn, cursor, statement, parameters, context, executemany):
        if fresh["transaction"] and statement.lstrip().upper().startswith("SELECT"):
            fresh["transaction"] = False
            writes.append(threading.Thread(target=write))
            writes[-1].start()
            writes[-1].join(timeout=3)  # done at once unless this transaction already holds the write lock

    event.listen(engine, "begin", on_begin)
    event.listen(engine, "after_cursor_execute", after_execute)
    try:
        yield
    finally:
        event.remove(engine, "after_cursor_execute", after_execute)
        event.remove(engine, "begin", on_begin)
        for thread in writes:
            thread.join(timeout=30)


WRITES_AFTER_A_READ = {  # (method, path, form or None, what succeeded looks like)
    "cancel": ("POST", "/api/v1/searches/{sid}/cancel", None, 200),
    "dashboard login": ("POST", "/login", {"token": "nas_admin"}, 303),
    "delete a finished search": ("DELETE", "/api/v1/searches/{done}", None, 204),
}


@pytest.mark.parametrize("request_name", list(WRITES_AFTER_A_READ))
def test_a_write_request_waits_for_a_busy_sqlite_instead_of_failing(request_name, tmp_path):
    """A worker commits between the request's first read and its write: the request must wait for the lock,
    not fail with 'database is locked' (SQLite refuses to upgrade a read whose snapshot is stale)."""
    from nas.store import Database

    settings = Settings(data_dir=tmp_path / "data", admin_token="nas_admin")
    application = create_app(settings, run_workers=False)
    bootstrap_admin(application.state.db, settings)
    worker = Database(settings.db_url)
    method, path, form, ok = WRITES_AFTER_A_READ[request_name]
    with TestClient(application, headers={"Authorization": "Bearer nas_admin"}) as client:
        sid = client.post("/api/v1/searches", json=MINIMAL).json()["id"]
        done = client.post("/api/v1/searches", json=MINIMAL).json()["id"]
        client.post(f"/api/v1/searches/{done}/cancel")
        with a_worker_writes_after_each_first_read(application.state.db.engine, worker, sid):
            r = client.request(method, path.format(sid=sid, done=done), data=form, follow_redirects=False)
        assert r.status_code == ok, r.text
        if request_name == "cancel":
            assert client.get(f"/api/v1/searches/{sid}").json()["status"] == "cancelled"
    worker.dispose()
    application.state.db.dispose()


def test_block_families_come_from_the_registry(admin):
    families = {f["name"]: f for f in admin.get("/api/v1/spaces/families").json()}
    assert set(families) >= {"conv", "attention", "ssm"}
    assert families["ssm"]["colour"].startswith("#") and "states" in families["ssm"]["options"]


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def test_uploads_are_checked_before_they_are_read_and_bad_ones_leave_nothing(admin, app):
    x, y = np.random.rand(60, 16).astype(np.float32), np.arange(60) % 3
    npy = io.BytesIO()
    np.save(npy, x)
    cases = {
        "empty": b"", "text": b"hello", "bare .npy": npy.getvalue(),
        # 8 MB of zeros in a few KB: refused from the header, before anything is decompressed
        "bomb": _npz(x=np.zeros((2000, 1000), np.float32), y=np.arange(2000) % 3),
        "nan": _npz(x=np.full_like(x, np.nan), y=y), "huge label": _npz(x=x, y=y + 10**12),
        "no rows": _npz(x=x[:0], y=y[:0]), "one class": _npz(x=x, y=np.zeros(60, int)),
        "complex": _npz(x=x.astype(np.complex64), y=y), "no y": _npz(x=x),
    }
    expected = {"bomb": "declare", "nan": "NaN", "huge label": "limit", "no rows": "no examples",
                "one class": "single class", "complex": "dtype", "no y": "missing"}
    for case, content in cases.items():
        r = admin.post("/api/v1/datasets", files={"file": ("d.npz", content)})
        assert r.status_code == 422, (case, r.text)
        assert r.json()["errors"][0]["loc"] == ["body", "file"] and expected.get(case, "") in r.json()["detail"], case
    folder = app.state.settings.data_dir / "datasets"
    assert not [p for p in folder.rglob("*") if p.is_file()]  # nothing refused stays on disk


def test_budgets_and_priorities_are_bounded(admin, app):
    r = admin.post("/api/v1/searches", json=MINIMAL | {"train": {"random_subnets": 10**9}})
    assert r.status_code == 422 and "train.random_subnets" in r.json()["detail"]
    r = admin.post("/api/v1/searches", json=MINIMAL | {"train": {"steps": 300_000}})  # over the server's 200,000
    assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "train", "steps"]
    with user_client(app, admin, "eve") as eve:
        r = eve.post("/api/v1/searches", json=MINIMAL, params={"priority": 50})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["query", "priority"]
        assert eve.post("/api/v1/searches", json=MINIMAL).status_code == 202
    assert admin.post("/api/v1/searches", json=MINIMAL, params={"priority": 50}).status_code == 202


def test_dataset_upload_then_submit(admin):
    buf = io.BytesIO()
    np.savez(buf, x=np.random.rand(60, 16).astype(np.float32), y=np.arange(60) % 3)
    r = admin.post("/api/v1/datasets", files={"file": ("my data.npz", buf.getvalue())})
    assert r.status_code == 201
    path = r.json()["path"]
    assert "my data" not in path  # stored under an id, not the uploaded name
    ok = admin.post("/api/v1/searches", json={"space": "hybrid-seq", "dataset": {"name": "npz", "path": path}})
    assert ok.status_code == 202
    bad = admin.post("/api/v1/datasets", files={"file": ("x.npz", b"garbage")})
    assert bad.status_code == 422 and "not an .npz file" in bad.json()["detail"] and "/" not in bad.json()["detail"]


def test_body_size_limit(admin):
    r = admin.post("/api/v1/searches", content=b"{" + b" " * 300_000 + b"}", headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


def test_chunked_bodies_over_the_limit_are_413_too(admin, app):
    """Without a Content-Length the limit is found while reading: still a 413, not a parse error."""

    def multipart():
        yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.npz"\r\n\r\n'
        for _ in range(30):
            yield b"0" * 10_000
        yield b"\r\n--xyz--\r\n"

    r = admin.post("/api/v1/datasets", content=multipart(), headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    folder = app.state.settings.data_dir / "datasets"
    assert not folder.exists() or not [p for p in folder.rglob("*") if p.is_file()]


def test_auth_and_isolation(app, admin):
    sid = admin.post("/api/v1/searches", json=MINIMAL).json()["id"]
    with TestClient(app) as anonymous:
        r = anonymous.get("/api/v1/searches")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    with user_client(app, admin, "alice") as alice:
        assert alice.get(f"/api/v1/searches/{sid}").status_code == 404
        assert alice.post(f"/api/v1/searches/{sid}/cancel").status_code == 404
        assert alice.get(f"/api/v1/searches/{sid}/events").status_code == 404
        assert alice.post("/api/v1/users", json={"name": "mallory"}).status_code == 403
        mine = alice.post("/api/v1/searches", json=MINIMAL).json()["id"]
        assert [s["id"] for s in alice.get("/api/v1/searches").json()["items"]] == [mine]
    assert admin.post("/api/v1/users", json={"name": "alice"}).status_code == 409


def test_spaces_and_health(admin):
    names = [s["name"] for s in admin.get("/api/v1/spaces").json()]
    assert "hybrid-small" in names
    shown = admin.get("/api/v1/spaces/hybrid-tiny").json()
    assert shown["spec"]["name"] == "hybrid-tiny" and "properties" in shown["json_schema"]
    assert admin.get("/api/v1/spaces/nope").status_code == 404
    assert len(admin.get("/api/v1/spaces/hybrid-small/sample", params={"seed": 3}).json()["arch_id"]) == 64
    assert admin.get("/healthz").json() == {"status": "ok"}
    assert "nas_queue_depth 0" in admin.get("/metrics").text


def test_openapi_declares_error_bodies(admin):
    spec = admin.get("/openapi.json").json()
    submit = spec["paths"]["/api/v1/searches"]["post"]
    assert {"202", "401", "413", "422"} <= set(submit["responses"])
    assert "ErrorBody" in str(submit["responses"]["401"])
    # every 422 is documented as the body the server sends, and every route may answer 503
    operations = [op for ops in spec["paths"].values() for op in ops.values()]
    assert "HTTPValidationError" not in str(spec)
    assert all("ErrorBody" in str(op["responses"]["422"]) for op in operations if "422" in op["responses"])
    assert all("503" in op["responses"] for op in operations)
    # timestamps carry their timezone, on SQLite as on PostgreSQL
    job = admin.get(f"/api/v1/searches/{admin.post('/api/v1/searches', json=MINIMAL).json()['id']}").json()
    assert job["created_at"].endswith(("Z", "+00:00"))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
config_like = st.fixed_dictionaries(
    {}, optional={"space": json_values | st.sampled_from(["hybrid-tiny", "hybrid-small"]),
                  "dataset": json_values | st.just({"name": "digits"}), "objectives": json_values,
                  "constraints": json_values, "train": json_values, "search": json_values,
                  "finalize": json_values, "hardware": json_values},
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=config_like | json_values)
def test_malformed_configs_never_cause_5xx(admin, body):
    r = admin.post("/api/v1/searches", json=body)
    assert r.status_code < 500, r.text
    assert r.status_code in (202, 422)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_endpoint_survives_odd_input(app, admin, data):
    """Every operation of the OpenAPI spec, with odd path values, query parameters and bodies."""
    operations = [(path, method.upper()) for path, item in app.openapi()["paths"].items() for method in item
                  if not path.endswith("/events")]  # the event stream is covered end to end
    path, method = data.draw(st.sampled_from(operations))
    for name in re.findall(r"{(\w+)}", path):
        path = path.replace("{" + name + "}", data.draw(st.text("abc0123456789-_%.", min_size=1, max_size=40)))
    params = data.draw(st.dictionaries(st.sampled_from(["limit", "offset", "sort", "order", "status", "seed",
                                                         "format", "after", "front_only", "name", "priority"]),
                                       st.text(max_size=8) | st.integers(-5, 10**7).map(str), max_size=3))
    r = admin.request(method, path, params=params, json=data.draw(json_values))
    assert r.status_code < 500, (method, path, params, r.text)


def test_a_registered_profile_drives_submissions_before_any_table_exists(admin):
    from nas.latency import LatencyTable

    body = {"name": "cpu-b1-t2", "threads": 2, "batch_size": 1}
    r = admin.post("/api/v1/hardware/profiles", json=body)
    assert r.status_code == 201 and r.json()["spec"]["machine"] is None  # bound by its first measurement
    assert admin.post("/api/v1/hardware/profiles", json=body).status_code == 409
    assert admin.post("/api/v1/hardware/profiles", json={"name": "../x"}).status_code == 422
    assert admin.post("/api/v1/hardware/profiles", json={"name": "gpu", "device": "tpu"}).status_code == 422
    assert "cpu-b1-t2" in [p["name"] for p in admin.get("/api/v1/hardware/profiles").json()]
    latency = MINIMAL | {"objectives": ["accuracy", "latency_ms"], "hardware": "cpu-b1-t2"}
    first, second = (admin.post("/api/v1/searches", json=latency) for _ in range(2))
    assert first.status_code == second.status_code == 202
    paths = [admin.get(f"/api/v1/searches/{r.json()['id']}").json()["config"]["hardware"] for r in (first, second)]
    assert paths[0] == paths[1]  # both grow the user's one table of that profile
    table = LatencyTable.load(paths[0])
    assert table.profile.name == "cpu-b1-t2" and table.entries == [] and table.profile.machine is None


def test_latency_tables_register_and_drive_submissions(admin):
    from tests.nas.test_latency import fake_table

    table = fake_table()
    r = admin.post("/api/v1/hardware/tables", files={"file": ("lut.json", table.model_dump_json())})
    assert r.status_code == 201 and r.json()["space"] == "hybrid-tiny" and r.json()["entries"] == len(table.entries)
    table_id = r.json()["id"]
    assert [t["id"] for t in admin.get("/api/v1/hardware/tables").json()] == [table_id]
    assert admin.get(f"/api/v1/hardware/tables/{table_id}").json()["profile"]["name"] == "test"
    ok = admin.post("/api/v1/searches", json=MINIMAL | {"objectives": ["accuracy", "latency_ms"],
                                                         "hardware": str(table_id)})
    assert ok.status_code == 202
    stored = admin.get(f"/api/v1/searches/{ok.json()['id']}").json()["config"]["hardware"]
    assert stored.endswith(f"tables/{table_id}.json")
    for bad, why in (("999", "not a latency table"), ("99999999999999999999", "not a latency table"),
                     ("../../etc/passwd", "no hardware profile named")):
        r = admin.post("/api/v1/searches", json=MINIMAL | {"objectives": ["accuracy", "latency_ms"], "hardware": bad})
        assert r.status_code == 422 and why in r.json()["detail"], r.json()
    other_space = admin.post("/api/v1/searches", json={"space": "hybrid-small", "dataset": {"name": "digits"},
                                                       "hardware": str(table_id)})
    assert other_space.status_code == 202  # keyed by layers: the worker measures what hybrid-small lacks
    junk = admin.post("/api/v1/hardware/tables", files={"file": ("lut.json", b"{}")})
    assert junk.status_code == 422 and "not a latency table" in junk.json()["detail"]
    assert admin.get("/api/v1/hardware/tables/12345").status_code == 404


def test_latency_tables_have_owners_and_visibility(app, admin):
    from tests.nas.test_latency import fake_table

    lut = ("lut.json", fake_table().model_dump_json())
    latency = MINIMAL | {"objectives": ["accuracy", "latency_ms"]}
    with user_client(app, admin, "alice") as alice, user_client(app, admin, "bob") as bob:
        mine = alice.post("/api/v1/hardware/tables", files={"file": lut}).json()
        assert mine["shared"] is False and mine["owner_id"] is not None
        served = admin.post("/api/v1/hardware/tables", files={"file": lut}).json()
        assert served["shared"] is True  # an admin's table is the server's
        assert [t["id"] for t in bob.get("/api/v1/hardware/tables").json()] == [served["id"]]
        assert bob.get(f"/api/v1/hardware/tables/{mine['id']}").status_code == 404
        r = bob.post("/api/v1/searches", json=latency | {"hardware": str(mine["id"])})
        assert r.status_code == 422 and r.json()["errors"][0]["loc"] == ["body", "hardware"]
        assert bob.post("/api/v1/searches", json=latency | {"hardware": str(served["id"])}).status_code == 202
        assert bob.post(f"/api/v1/hardware/tables/{mine['id']}/share").status_code == 403  # admins only
        assert admin.post(f"/api/v1/hardware/tables/{mine['id']}/share").json()["shared"] is True
        assert bob.get(f"/api/v1/hardware/tables/{mine['id']}").status_code == 200
        assert bob.delete(f"/api/v1/hardware/tables/{mine['id']}").status_code == 403  # visible, not his
        assert alice.delete(f"/api/v1/hardware/tables/{mine['id']}").status_code == 204
        assert bob.get(f"/api/v1/hardware/tables/{mine['id']}").status_code == 404
        bad = alice.post("/api/v1/hardware/tables", files={"file": lut, "report": ("r.json", b'{"within_10pct": "lots"}')})
        assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "report"]
    with TestClient(app) as browser:  # no report can break the hardware page
        browser.post("/login", data={"token": "nas_admin"})
        assert browser.get("/hardware").status_code == 200


def test_ids_and_offsets_beyond_the_database_integer_are_422(admin):
    """PostgreSQL's INTEGER stops at 2**31 - 1; a larger id or offset is bad input, not a server error."""
    for path in ("/api/v1/hardware/tables/2200000000", "/api/v1/searches?offset=2200000000"):
        r = admin.get(path)
        assert r.status_code == 422, (path, r.text)
        assert "less than or equal to 2147483647" in r.text
    assert admin.get("/api/v1/hardware/tables/2147483647").status_code == 404
