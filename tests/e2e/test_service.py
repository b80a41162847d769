"""End to end against real servers on 127.0.0.1: REST, SSE, exports, auth, crashes; SQLite and PostgreSQL."""

import io
import os
import re
import signal
import subprocess
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import fresh_postgres_database
from tests.e2e.server import TINY_SEARCH, Server, follow_events, wait_for


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request, tmp_path):
    drop = None
    url = None
    if request.param == "postgresql":
        url, drop = fresh_postgres_database()
    srv = Server(tmp_path / "data", url).start()
    yield srv
    srv.kill()
    if drop:
        drop()


def test_search_lifecycle_over_rest(server):
    admin = server.client()
    alice_token = admin.post("/api/v1/users", json={"name": "alice"}).json()["token"]
    alice, bob = server.client(alice_token), server.client(admin.post("/api/v1/users", json={"name": "bob"}).json()["token"])

    r = alice.post("/api/v1/searches", json=TINY_SEARCH, headers={"Idempotency-Key": "one"})
    assert r.status_code == 202 and r.headers["location"] == f"/api/v1/searches/{r.json()['id']}"
    search_id = r.json()["id"]
    again = alice.post("/api/v1/searches", json=TINY_SEARCH, headers={"Idempotency-Key": "one"})
    assert again.json()["id"] == search_id and again.json()["created"] is False
    doomed = alice.post("/api/v1/searches", json=TINY_SEARCH).json()["id"]  # queued behind the first

    # isolation and auth
    assert bob.get(f"/api/v1/searches/{search_id}").status_code == 404
    assert bob.get("/api/v1/searches").json()["total"] == 0
    assert server.client("nas_wrong").get("/api/v1/searches").status_code == 401
    assert httpx_get(server, f"/api/v1/searches/{search_id}").status_code == 401

    cancelled = alice.post(f"/api/v1/searches/{doomed}/cancel").json()
    assert cancelled["status"] == "cancelled"

    events = follow_events(alice, search_id)
    kinds = [k for k, _ in events]
    assert kinds[-1] == "end" and "candidate" in kinds and "front" in kinds
    progress = [d["progress"] for k, d in events if k == "progress"]
    assert progress == sorted(progress) and len(progress) >= 3
    statuses = [d["status"] for k, d in events if k == "status"]
    assert statuses[0] == "queued" and statuses[-1] == "succeeded"

    body = alice.get(f"/api/v1/searches/{search_id}").json()
    assert body["status"] == "succeeded" and body["progress"] == 1.0 and body["attempt"] == 1
    front = alice.get(f"/api/v1/searches/{search_id}/front").json()
    assert front and all({"arch_id", "arch", "metrics"} == set(f) for f in front)
    assert all("test_accuracy" in f["metrics"] for f in front)
    page = alice.get(f"/api/v1/searches/{search_id}/candidates", params={"sort": "macs", "order": "asc"}).json()
    assert page["total"] == 6 and [c["metrics"]["macs"] for c in page["items"]] == sorted(
        c["metrics"]["macs"] for c in page["items"])
    # the NSGA-II study lives in the product's database, where optuna-dashboard finds it
    import optuna

    url = server.database_url or f"sqlite:///{(server.data_dir / 'nas.db').resolve()}"
    study = optuna.load_study(study_name=f"search-{search_id}", storage=url)
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) >= 6

    arch_id = front[0]["arch_id"]
    with ThreadPoolExecutor(4) as pool:  # four downloads at once of an export that does not exist yet
        downloads = list(pool.map(lambda _: alice.get(f"/api/v1/searches/{search_id}/candidates/{arch_id}/export",
                                                      params={"format": "onnx"}), range(4)))
    assert [d.status_code for d in downloads] == [200] * 4 and len({d.content for d in downloads}) == 1
    onnx = downloads[0]
    session = ort.InferenceSession(onnx.content, providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: np.random.rand(3, 1, 8, 8).astype(np.float32)})[0]
    assert out.shape == (3, 10)
    code = alice.get(f"/api/v1/searches/{search_id}/candidates/{arch_id}/export", params={"format": "pytorch"})
    assert "model.py" in zipfile.ZipFile(io.BytesIO(code.content)).namelist()
    assert bob.get(f"/api/v1/searches/{search_id}/candidates/{arch_id}/export").status_code == 404

    assert alice.get("/metrics").status_code == 403  # every user's queue counts: admins only
    metrics = admin.get("/metrics").text
    assert "nas_queue_depth 0" in metrics and "nas_evaluations_total 6" in metrics
    assert alice.delete(f"/api/v1/searches/{search_id}").status_code == 204
    assert alice.get(f"/api/v1/searches/{search_id}").status_code == 404
    assert f"search-{search_id}" not in [st.study_name for st in optuna.get_all_study_summaries(url)]  # and its study


def httpx_get(server, path):
    import httpx

    return httpx.get(server.url + path)


def test_cancel_running_search_keeps_candidates(tmp_path):
    srv = Server(tmp_path / "data").start()
    try:
        c = srv.client()
        slow = TINY_SEARCH | {"train": {"steps": 20, "batch_size": 32},
                              "search": {"evaluations": 3000, "population": 4, "bn_batches": 1}}
        search_id = c.post("/api/v1/searches", json=slow).json()["id"]
        wait_for(c, search_id, lambda b: b["phase"] == "search" and b["step"] >= 3)
        asked = time.time()
        assert c.post(f"/api/v1/searches/{search_id}/cancel").status_code == 200
        body = wait_for(c, search_id, lambda b: b["status"] == "cancelled", timeout=60, poll=0.2)
        assert time.time() - asked < 15
        kept = c.get(f"/api/v1/searches/{search_id}/candidates").json()["total"]
        assert kept > 0 and body["error"] is None
    finally:
        srv.kill()


def test_killed_worker_resumes_on_a_new_attempt(tmp_path):
    srv = Server(tmp_path / "data", lease_seconds=6).start()
    try:
        c = srv.client()
        longer = TINY_SEARCH | {"train": {"steps": 400, "batch_size": 32, "checkpoint_every": 10}}
        search_id = c.post("/api/v1/searches", json=longer).json()["id"]
        body = wait_for(c, search_id, lambda b: b["phase"] == "train" and b["step"] >= 30)
        from nas.store import Database
        from nas.store.models import Job

        db = Database(f"sqlite:///{tmp_path / 'data' / 'nas.db'}")
        with db.session() as s:
            owner = s.get(Job, search_id).lease_owner
        db.dispose()
        pid = int(owner.rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)  # the Ray worker process running the search
        body = wait_for(c, search_id, lambda b: b["status"] in ("succeeded", "failed"), timeout=600)
        assert body["status"] == "succeeded", body["error"]
        assert body["attempt"] == 2
        events = follow_events(c, search_id)
        messages = [d["text"] for k, d in events if k == "message"]
        assert any(m.startswith("resumed supernet training from step") and int(m.rsplit(" ", 1)[1]) >= 10
                   for m in messages)
    finally:
        srv.kill()


def test_server_crash_loses_nothing_and_runs_nothing_twice(tmp_path):
    data = tmp_path / "data"
    srv = Server(data, lease_seconds=6).start()
    c = srv.client()
    longer = TINY_SEARCH | {"train": {"steps": 300, "batch_size": 32, "checkpoint_every": 10}}
    ids = [c.post("/api/v1/searches", json=longer if i == 0 else TINY_SEARCH).json()["id"] for i in range(3)]
    wait_for(c, ids[0], lambda b: b["phase"] == "train" and b["step"] >= 20)
    srv.kill()  # SIGKILL with one running and two queued

    srv2 = Server(data, lease_seconds=6)
    srv2.port, srv2.url = srv.port, srv.url
    srv2.start()
    try:
        c = srv2.client()
        bodies = [wait_for(c, i, lambda b: b["status"] in ("succeeded", "failed"), timeout=900) for i in ids]
        assert [b["status"] for b in bodies] == ["succeeded"] * 3, [b["error"] for b in bodies]
        assert bodies[0]["attempt"] == 2 and bodies[1]["attempt"] == 1 and bodies[2]["attempt"] == 1
        for search_id in ids:
            statuses = [d["status"] for k, d in follow_events(c, search_id) if k == "status"]
            assert statuses.count("succeeded") == 1
        first = follow_events(c, ids[0])
        assert any(k == "message" and d["text"].startswith("resumed supernet training") for k, d in first)
        total = c.get(f"/api/v1/searches/{ids[0]}/candidates").json()["total"]
        assert total == 6  # resumed candidates are not stored twice
    finally:
        srv2.kill()


def test_sigterm_hands_running_searches_back_and_exits_cleanly(tmp_path):
    data = tmp_path / "data"
    srv = Server(data, lease_seconds=6).start()
    c = srv.client()
    longer = TINY_SEARCH | {"train": {"steps": 300, "batch_size": 32, "checkpoint_every": 10}}
    search_id = c.post("/api/v1/searches", json=longer).json()["id"]
    wait_for(c, search_id, lambda b: b["phase"] == "train" and b["step"] >= 20)
    started = time.monotonic()
    assert srv.terminate(timeout=30) == 0
    assert time.monotonic() - started < 30
    log = srv.log.read_text()
    assert "Traceback" not in log and "SIGTERM received" not in log and log.rstrip().endswith("stopped"), log[-2000:]

    srv2 = Server(data, lease_seconds=6).start()
    try:
        c2 = srv2.client()
        body = wait_for(c2, search_id, lambda b: b["status"] in ("succeeded", "failed"), timeout=600)
        assert body["status"] == "succeeded", body["error"]
        assert body["attempt"] == 2 and body["max_attempts"] == 4  # the handed-back attempt is not counted
        statuses = [d for k, d in follow_events(c2, search_id) if k == "status"]
        assert any(d.get("reason") == "the server shut down" for d in statuses)
        messages = [d["text"] for k, d in follow_events(c2, search_id) if k == "message"]
        assert any(m.startswith("resumed supernet training from step") for m in messages)
    finally:
        srv2.kill()


def test_a_job_the_cluster_cannot_run_fails_at_once_and_blocks_nobody(tmp_path):
    """A GPU table build on a cluster without GPUs used to wait for ever, holding the only slot."""
    srv = Server(tmp_path / "data").start()
    try:
        c = srv.client()
        assert all(address.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:", "[::1]:"))
                   for address in listening_addresses(srv.proc.pid)), "Ray or the API listens beyond loopback"
        build = c.post("/api/v1/hardware/builds", json={"space": "hybrid-tiny", "device": "cuda"}).json()["id"]
        body = wait_for(c, build, lambda b: b["status"] in ("succeeded", "failed", "cancelled"), timeout=120)
        assert body["status"] == "failed" and body["error_kind"] == "user" and "GPU" in body["error"], body
        search_id = c.post("/api/v1/searches", json=TINY_SEARCH).json()["id"]
        body = wait_for(c, search_id, lambda b: b["status"] in ("succeeded", "failed"), timeout=600)
        assert body["status"] == "succeeded", body["error"]
        # the local Ray's workers run at NAS_WORKER_NICENESS (0), not Ray's default of 15
        workers = ray_workers(srv.proc.pid)
        assert workers and {os.getpriority(os.PRIO_PROCESS, pid) for pid in workers} == {0}, workers
    finally:
        srv.kill()


def ray_workers(server_pid: int) -> list[int]:
    """The server's Ray processes titled `ray::` (its workers and agents): in its process group, or children of
    its raylet (each worker leads a process group of its own)."""
    group = os.getpgid(server_pid)
    out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=True).stdout
    rows = [line.split(None, 2) for line in out.splitlines()]
    ours = {int(pid) for pid, _, _ in rows if _group_of(int(pid)) == group}
    return [int(pid) for pid, parent, args in rows
            if args.startswith("ray::") and (int(pid) in ours or int(parent) in ours)]


def listening_addresses(server_pid: int) -> list[str]:
    """The local addresses that the server's process group (the API, its Ray processes) listens on."""
    group = os.getpgid(server_pid)
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    addresses = []
    for line in out.splitlines():
        pids = [int(p) for p in re.findall(r"pid=(\d+)", line)]
        if any(_group_of(p) == group for p in pids):
            addresses.append(line.split()[3])
    assert addresses, "found no listening socket of the server"
    return addresses


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _trial_spans(tune_folder) -> list[tuple[float, float]]:
    """Each Tune trial's (start, end) in seconds since the epoch, from the results it reported."""
    import json

    spans = []
    for results in tune_folder.glob("*/result.json"):
        rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        spans.append((rows[0]["timestamp"] - rows[0]["time_this_iter_s"], rows[-1]["timestamp"]))
    return spans


def test_a_cancel_stops_the_finalists_trials_and_then_two_train_side_by_side(tmp_path):
    """A cancel during fine-tuning stops its Tune trials within seconds, leaving the cluster's CPUs free; on 2
    CPUs the next search's task yields its own CPU while it waits on Tune, so its two trials run at once."""
    srv = Server(tmp_path / "data").start()
    try:
        c = srv.client()
        long = TINY_SEARCH | {"finalize": {"top_k": 1, "init": "auto", "epochs": 100, "patience": 100}}
        search_id = c.post("/api/v1/searches", json=long).json()["id"]
        wait_for(c, search_id, lambda b: b["phase"] == "finetune")
        asked = time.time()
        assert c.post(f"/api/v1/searches/{search_id}/cancel").status_code == 200
        wait_for(c, search_id, lambda b: b["status"] == "cancelled", timeout=120, poll=0.2)
        assert time.time() - asked < 60

        both = TINY_SEARCH | {"finalize": {"top_k": 1, "init": "auto", "epochs": 6, "patience": 10}}
        search_id = c.post("/api/v1/searches", json=both).json()["id"]
        body = wait_for(c, search_id, lambda b: b["status"] in ("succeeded", "failed"))
        assert body["status"] == "succeeded", body
        spans = _trial_spans(srv.data_dir / "searches" / search_id / "tune" / "finetune")
        assert len(spans) == 2  # inherited and from scratch
        assert max(start for start, _ in spans) < min(end for _, end in spans), spans  # they overlapped
    finally:
        srv.kill()
