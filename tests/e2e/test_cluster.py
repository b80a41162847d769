"""A search on a real 2-node Ray cluster: evaluations fan out over both nodes, finalists train as Tune trials.

The cluster is Ray's own multi-node simulator (`ray.cluster_utils.Cluster`): a head and a worker node, each
its own raylet with its own resources, joined through the head's GCS address and bound to loopback; the
service joins it through NAS_RAY_ADDRESS like a deployment would.
"""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.server import TINY_SEARCH, Server, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every node on 127.0.0.1
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False})
    cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    yield cluster
    cluster.shutdown()


def test_a_search_spreads_its_evaluations_over_both_nodes_and_finalizes_through_tune(cluster, tmp_path):
    server = Server(tmp_path / "server", env={"NAS_RAY_ADDRESS": cluster.address}).start()
    try:
        with server.client() as client:
            config = json.loads(json.dumps(TINY_SEARCH))
            config["search"] |= {"workers": 2, "evaluations": 8}
            config["finalize"] |= {"top_k": 2}
            config["trust"] = {"enabled": True, "archs": 3, "epochs": 1}
            job_id = client.post("/api/v1/searches", json=config).json()["id"]
            body = wait_for(client, job_id, lambda b: b["status"] in ("succeeded", "failed", "cancelled"), timeout=900)
            assert body["status"] == "succeeded", body
            items = client.get(f"/api/v1/searches/{job_id}/candidates", params={"limit": 100}).json()["items"]
            trust = client.get(f"/api/v1/searches/{job_id}/trust").json()
            result = json.loads((tmp_path / "server" / "searches" / job_id / "result.json").read_text())
    finally:
        server.terminate()
    assert len(items) == 8
    workers = {c["worker"] for c in items}
    nodes = {w.split("@")[0] for w in workers}
    assert len(workers) >= 2 and len(nodes) == 2, workers  # both nodes evaluated candidates
    tuned = [c for c in items if c["on_front"] and "finetuned_val_accuracy" in c["metrics"]]
    assert tuned and all(c["trial_id"] for c in tuned)
    assert len({c["trial_id"] for c in tuned}) == len(tuned)  # one Tune trial per finalist
    assert {c["arch_id"]: c["worker"] for c in result["candidates"]} == {c["arch_id"]: c["worker"] for c in items}
    assert {c["trial_id"] for c in result["front"] if c["trial_id"]} == {c["trial_id"] for c in tuned}
    # the trust report's stand-alone trainings are Tune trials too, apart from the finalists'
    assert len(trust["points"]) == 3 and all(p["trial_id"] for p in trust["points"])
    assert not {p["trial_id"] for p in trust["points"]} & {c["trial_id"] for c in tuned}


def test_the_worker_pool_scores_exactly_as_the_search_process_does(cluster):
    """Parallel evaluation changes where an accuracy is computed, never its value."""
    import random

    import ray
    import torch

    from nas.data import prepare
    from nas.evaluate import Evaluator
    from nas.progress import RecordingReporter
    from nas.schemas import SearchConfig
    from search_spaces import HybridSupernet
    from workers.evaluation_pool import RayPool, make_pool

    raw, space = prepare(SearchConfig.model_validate({"space": "hybrid-tiny", "dataset": {"name": "digits"}}))
    torch.manual_seed(0)
    evaluator = Evaluator(HybridSupernet.from_spec(space).eval(), raw.normalized(), bn_batches=2)
    rng = random.Random(0)
    archs = [evaluator.supernet.space.sample(rng) for _ in range(6)]
    ray.init(address=cluster.address)
    try:
        pool = make_pool(evaluator.scorer, RecordingReporter(), workers=2)
        assert isinstance(pool, RayPool) and pool.size == 2
        try:
            remote = pool.accuracies(archs)
        finally:
            pool.close()
    finally:
        ray.shutdown()
    local = [evaluator.scorer.val_accuracy(a) for a in archs]
    assert [acc for acc, _ in remote] == local
    assert len({worker.split("@")[0] for _, worker in remote}) == 2
