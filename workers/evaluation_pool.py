"""RayPool: a search's candidate evaluations fanned out over Ray actors.

Each actor receives the trained supernet and the few tensors validation needs once (through Ray's object
store, so no worker needs the search's disk), then extracts, recalibrates BN and scores the archs it is
given; the search asks its strategy for a batch of archs the size of the pool (nas.search.loop).
"""

from __future__ import annotations

import logging
import os
import socket

import ray
import torch
from ray.util import ActorPool

from nas.evaluate import AccuracyPool, AccuracyScorer, LocalPool
from nas.progress import Reporter
from search_spaces import Arch

log = logging.getLogger(__name__)

ACTOR_START_SECONDS = 120.0  # actors not placed by then (the cluster is busy) are given up


def worker_label() -> str:
    """This Ray worker: its node (short id), host and process, e.g. '3f2a9c1d@host:4242'."""
    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    return f"{node[:8]}@{socket.gethostname()}:{os.getpid()}"


@ray.remote(num_cpus=1, max_restarts=0)
class EvaluationActor:
    def __init__(self, scorer: AccuracyScorer):
        torch.set_num_threads(1)  # one core per actor: the pool is the parallelism
        self.scorer, self.name = scorer, worker_label()

    def ready(self) -> str:
        return self.name

    def accuracy(self, arch: dict) -> tuple[float, str]:
        return self.scorer.val_accuracy(self.scorer.supernet.space.parse(arch)), self.name


class RayPool:
    """Up to `size` evaluation actors, spread over the cluster's nodes."""

    def __init__(self, actors: list, names: list[str]):
        self.actors, self.size, self.names = actors, len(actors), names
        self.pool = ActorPool(actors)

    def accuracies(self, archs: list[Arch]) -> list[tuple[float, str]]:
        try:
            return list(self.pool.map(lambda actor, arch: actor.accuracy.remote(arch.to_dict()), archs))
        except ray.exceptions.RayActorError as err:  # the machine's trouble: the attempt is retried
            raise ConnectionError(f"an evaluation worker was lost: {err}") from None

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor)


def default_workers() -> int:
    """What the cluster offers: its free CPUs now (this search's own task already holds one)."""
    return max(1, int(ray.available_resources().get("CPU", 0)))


def start_actors(scorer: AccuracyScorer, size: int, cuda: bool = False,
                 timeout: float = ACTOR_START_SECONDS) -> RayPool | None:
    """`size` evaluation actors spread over the nodes, each given `scorer` once; those not running within
    `timeout` (the cluster is busy) are given up. None when none started."""
    shared = ray.put(scorer.portable())
    options = {"scheduling_strategy": "SPREAD"} | ({"num_gpus": 1} if cuda else {})
    actor_class = EvaluationActor.options(**options)  # type: ignore[attr-defined]
    actors = [actor_class.remote(shared) for _ in range(size)]
    pings = [actor.ready.remote() for actor in actors]
    ready, late = ray.wait(pings, num_returns=len(pings), timeout=timeout)
    for ref in late:
        ray.kill(actors[pings.index(ref)])
    if not ready:
        return None
    return RayPool([actors[pings.index(ref)] for ref in ready], ray.get(ready))


def make_pool(scorer: AccuracyScorer, reporter: Reporter, workers: int | None, cuda: bool = False) -> AccuracyPool:
    """A pool of `workers` actors (default: what the cluster offers); a single worker evaluates in this process."""
    size = workers or default_workers()
    pool = start_actors(scorer, size, cuda) if size > 1 else None
    if pool is None:
        if size > 1:
            reporter.message(f"no evaluation worker could start within {ACTOR_START_SECONDS:g} s; evaluating in "
                             "the search's own process")
        return LocalPool(scorer, worker_label())
    reporter.message(f"evaluating on {pool.size} workers: {', '.join(pool.names)}")
    return pool
