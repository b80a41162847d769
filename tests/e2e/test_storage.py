"""Artifacts through object storage: a real S3-compatible server (moto's, as its own process on 127.0.0.1)
holds what the service's workers write and read; the API and the worker each fetch what they lack from it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import onnxruntime as ort
import pytest

from nas.storage import ArtifactStore
from tests.e2e.server import TINY_SEARCH, Server, free_port, wait_for
from tests.e2e.test_latency_service import images_npz

pytestmark = pytest.mark.slow
BUCKET = "nas-artifacts"


@pytest.fixture(scope="module")
def s3():
    """An S3-compatible server process and an empty bucket; yields the environment that points clients at it."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    deadline = time.time() + 60
    while True:
        try:
            httpx.get(env["AWS_ENDPOINT_URL"], timeout=2)
            break
        except httpx.HTTPError:
            if time.time() > deadline or proc.poll() is not None:
                raise RuntimeError("the S3-compatible server did not start") from None
            time.sleep(0.3)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import s3fs

    s3fs.S3FileSystem().mkdir(BUCKET)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proc.terminate()
    proc.wait(timeout=30)


def test_the_store_mirrors_folders_between_machines(s3, tmp_path):
    url = f"s3://{BUCKET}/unit"
    here, there = ArtifactStore(url, tmp_path / "a"), ArtifactStore(url, tmp_path / "b")
    run = tmp_path / "a" / "searches" / "x"
    (run / "models").mkdir(parents=True)
    (run / "result.json").write_text("{}")
    (run / "models" / "m.safetensors").write_bytes(b"\0" * 10)
    (run / ".result.json.tmp").write_text("torn")  # an atomic write in progress is not published
    here.push_tree(run)
    there.pull_tree(tmp_path / "b" / "searches" / "x")
    got = sorted(p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert got == ["searches/x/models/m.safetensors", "searches/x/result.json"]
    (run / "result.json").write_text('{"done": true}')
    here.push_tree(run)
    assert there.pull(tmp_path / "b" / "searches" / "x" / "result.json", refresh=True).read_text() == '{"done": true}'
    there.delete(tmp_path / "b" / "searches" / "x")
    assert not there.pull(tmp_path / "b" / "searches" / "y" / "result.json").exists()
    import s3fs

    assert s3fs.S3FileSystem().find(f"{BUCKET}/unit/searches/x", refresh=True) == []


def test_a_search_keeps_its_artifacts_in_object_storage(s3, tmp_path):
    import s3fs

    data_dir = tmp_path / "data"
    server = Server(data_dir, env=s3 | {"NAS_STORAGE_URL": f"s3://{BUCKET}/service"}).start()
    try:
        with server.client() as client:
            uploaded = client.post("/api/v1/datasets", files={"file": ("shapes.npz", images_npz(300, 3, 8))}).json()
            Path(uploaded["path"]).unlink()  # the API's copy is gone: submission finds the upload in the store
            config = TINY_SEARCH | {"dataset": {"name": "npz", "path": uploaded["path"]}}
            job_id = client.post("/api/v1/searches", json=config).json()["id"]
            body = wait_for(client, job_id, lambda b: b["status"] in ("succeeded", "failed", "cancelled"))
            assert body["status"] == "succeeded", body
            stored = s3fs.S3FileSystem().find(f"{BUCKET}/service/searches/{job_id}", refresh=True)
            names = {name.split(f"{job_id}/", 1)[1] for name in stored}
            assert {"result.json", "supernet.safetensors", "candidates.jsonl", "train_checkpoint.pt"} <= names
            assert any(n.startswith("models/") for n in names)
            assert any(n.startswith("tune/finetune/") for n in names)  # Tune's trials live in the store too
            items = client.get(f"/api/v1/searches/{job_id}/candidates", params={"limit": 100}).json()["items"]
            off_front = next(c for c in items if not c["on_front"])
            # the API's own copy is gone: exports come from what the store holds
            import shutil

            shutil.rmtree(data_dir / "searches" / job_id)
            Path(uploaded["path"]).unlink(missing_ok=True)
            r = client.get(f"/api/v1/searches/{job_id}/candidates/{off_front['arch_id']}/export",
                           params={"format": "onnx"})
            assert r.status_code == 200, r.text
    finally:
        server.terminate()
    session = ort.InferenceSession(r.content)
    x = np.zeros([1, *session.get_inputs()[0].shape[1:]], dtype=np.float32)
    assert session.run(None, {session.get_inputs()[0].name: x})[0].shape == (1, 3)
