"""Dispatcher: claims queued jobs and runs each as the Ray task of its kind (workers.kinds), a configurable
number at a time.

It also returns the jobs of lost workers to the queue: at once when Ray reports the task's
worker died, or when the lease expires (e.g. the whole server died and restarted).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid

from nas.settings import Settings
from nas.store import Database, StaleAttempt, repo
from workers import latency_job, runner  # noqa: F401  (register their job kinds)
from workers.kinds import JOB_KINDS

log = logging.getLogger(__name__)


def local_ray_config(worker_niceness: int = 0, kept_workers: int = 1) -> dict:
    """Where a local Ray started by the service departs from Ray's defaults, each because a process woken for
    nothing takes a core from a search's training (on 2 cores torch's threads use both, and one preempted thread
    stalls its peers at the next op); benchmarks/idle_server.py measures what an idle server uses."""
    return {
        # Ray's own default, 15, made a search through the service 12-35% slower than in-process on 2 cores: any
        # other process preempts such a worker (the API stayed responsive at 0, see the README)
        "worker_niceness": worker_niceness,
        # Ray keeps a worker process per CPU, idle ones included, and an idle worker wakes every 10 ms (a fixed
        # period in Ray) to check for signals: 0.8 CPU s a minute each here. The service runs one task per job
        # and keeps a warm worker for each job it may run at once; actors (evaluation, Tune trials) get their own.
        "num_workers_soft_limit": kept_workers,
        "enable_metrics_collection": False,  # nothing reads them: the Ray dashboard is off
        # the raylet's 100-ms timers, which on a single node have nothing to hurry for
        "raylet_report_resources_period_milliseconds": 1000,
        "raylet_check_gc_period_milliseconds": 1000,
        "kill_idle_workers_interval_ms": 1000,
        "local_fs_monitor_interval_ms": 1000,
        "object_manager_timer_freq_ms": 1000,
    }


def init_ray(address: str | None, worker_niceness: int = 0, kept_workers: int = 1) -> None:
    """Join NAS_RAY_ADDRESS's cluster (run as its own `ray start` set it up), or start a local single-node Ray bound
    to loopback, set up by `local_ray_config`."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keeps a local instance on 127.0.0.1
    # ray.init installs SIGTERM handlers that exit at once; the server's own (a graceful shutdown) must stay
    in_main = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGTERM) if in_main else None
    # token authentication is on by default for a local instance; Ray warns of it at every start
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    if address:
        ray.init(address=address, logging_level=logging.WARNING)
    else:
        ray.init(include_dashboard=False, logging_level=logging.WARNING, num_cpus=os.cpu_count() or 1,
                 _node_ip_address="127.0.0.1", _system_config=local_ray_config(worker_niceness, kept_workers))
    if in_main:
        signal.signal(signal.SIGTERM, handler)


def import_the_engine() -> None:
    """What a search imports, including what its first steps import lazily: the first torch optimizer imports
    torch._dynamo (1.7 s here) and the built-in dataset scikit-learn's loaders (0.8 s)."""
    import sklearn.datasets  # noqa: F401
    import torch._dynamo  # noqa: F401

    import nas.latency.for_search  # noqa: F401  (a search with a latency table: the profiler, scipy)
    import nas.pipeline  # noqa: F401
    import workers.tune_finalize  # noqa: F401


def warm_workers(count: int) -> None:
    """Have Ray start `count` worker processes that import torch and the engine, without waiting for them: Ray
    keeps idle workers and hands them the next tasks, so a search does not pay for a process start and those
    imports (seconds each) when it begins. Actors do not benefit: Ray starts an actor only in a
    worker that has never run a task, so evaluation actors and Tune trials start processes of their own (which is
    why what they import is kept lean: nas.latency loads lazily)."""
    import ray

    warm = ray.remote(num_cpus=0)(import_the_engine)
    for _ in range(max(1, count)):
        warm.remote()


RAY_RESOURCE_NAMES = {"num_gpus": "GPU", "num_cpus": "CPU"}


def missing_resources(wanted: dict, cluster: dict) -> str | None:
    """What a task's options ask for that the whole cluster does not have (None if it has it all)."""
    for option, amount in wanted.items():
        name = RAY_RESOURCE_NAMES.get(option)
        if name and amount > cluster.get(name, 0):
            return f"needs {amount:g} {name} and the Ray cluster has {cluster.get(name, 0):g}"
    return None


class Dispatcher:
    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings
        self.name = f"dispatcher-{uuid.uuid4().hex[:8]}"
        self.running: dict = {}  # Ray ObjectRef -> (job id, attempt)
        self.submitted: dict = {}  # Ray ObjectRef of a task not started yet -> (monotonic time, its resources)
        self._stop = threading.Event()
        self._last_expiry_check = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        import ray

        init_ray(self.settings.ray_address, self.settings.worker_niceness, self.settings.max_concurrent)
        # retries go through our queue, not Ray's
        self._tasks = {name: ray.remote(max_retries=0, num_cpus=1)(JOB_KINDS[name].run) for name in JOB_KINDS}
        warm_workers(self.settings.max_concurrent)  # a job is one task: one warm worker for each that may run
        self._thread = threading.Thread(target=self._loop, name="dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop taking work and hand every running job back to the queue (it resumes from its checkpoint on
        the next start, and the attempt it was on is not counted against it)."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        import ray

        if not ray.is_initialized():
            return
        for ref, (job_id, attempt) in list(self.running.items()):
            ray.cancel(ref, force=True)  # its writes are fenced once the job is back in the queue anyway
            repo.requeue(self.db, job_id=job_id, attempt=attempt, reason="the server shut down", counted=False)
            log.info("job %s handed back to the queue", job_id)
        self.running.clear()
        self.submitted.clear()
        ray.shutdown()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("dispatcher tick failed")
            self._stop.wait(self.settings.poll_seconds)

    def tick(self) -> None:
        import ray

        now = time.monotonic()
        if now - self._last_expiry_check >= min(5.0, self.settings.lease_seconds / 3):
            self._stop_expired(repo.requeue_expired(self.db))  # takes SQLite's write lock: not on every poll
            self._last_expiry_check = now
        if self.running:
            done, pending = ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
            self._watch_unstarted(pending, now)
            for ref in done:
                self.submitted.pop(ref, None)
                job_id, attempt = self.running.pop(ref)
                try:
                    ray.get(ref)
                except Exception as err:  # the worker process died (or Ray lost it): requeue now
                    reason = f"worker lost: {type(err).__name__}"
                    log.warning("job %s attempt %s: %s", job_id, attempt, reason)
                    repo.requeue(self.db, job_id=job_id, attempt=attempt, reason=reason)
        threads = self.settings.threads_per_job or max(1, (os.cpu_count() or 1) // self.settings.max_concurrent)
        while len(self.running) < self.settings.max_concurrent:
            job = repo.claim_next(self.db, owner=self.name, lease_seconds=self.settings.lease_seconds,
                                  kinds=list(self._tasks))
            if job is None:
                break
            resources = JOB_KINDS[job.kind].resources(job.config)
            problem = missing_resources(resources, ray.cluster_resources())
            if problem:  # waiting would hold a slot for ever: fail now, saying what is missing
                repo.finish(self.db, job_id=job.id, attempt=job.attempt, status="failed", error_kind="user",
                            error=f"cannot start: the job {problem}; add a Ray node that has it and resubmit")
                continue
            task = self._tasks[job.kind].options(**resources)
            ref = task.remote(self.settings.db_url, str(self.settings.data_dir.resolve()), job.id, job.attempt,
                              self.settings.lease_seconds, threads, self.settings.storage_url)
            self.running[ref] = (job.id, job.attempt)
            self.submitted[ref] = (now, resources)

    def _stop_expired(self, job_ids: list[str]) -> None:
        """A task of ours whose job's lease expired (its heartbeat stopped: a hung worker) is stopped, so that
        its slot serves the queue again; the job itself went back to the queue (its writes are fenced anyway)."""
        for ref, (job_id, attempt) in list(self.running.items()):
            if job_id in job_ids:
                log.warning("job %s attempt %s: lease expired, stopping its task", job_id, attempt)
                self._drop(ref)

    def _drop(self, ref: object) -> None:
        """Stop a task of ours and free its slot."""
        import ray

        ray.cancel(ref, force=True)
        self.running.pop(ref, None)
        self.submitted.pop(ref, None)

    def _watch_unstarted(self, pending: list, now: float) -> None:
        """Tasks whose worker has not taken the lease yet (waiting for resources): their lease is renewed here
        until then (afterwards the worker's own heartbeat keeps it, so one whose heartbeat stops has it expire),
        a cancel removes them at once, and one that waits longer than NAS_START_TIMEOUT fails saying so,
        freeing its slot."""
        waiting = {ref: self.running[ref] for ref in pending if ref in self.submitted}
        if not waiting:
            return
        states = repo.lease_states(self.db, [job_id for job_id, _ in waiting.values()])
        for ref, (job_id, attempt) in waiting.items():
            owner, cancel_requested = states.get(job_id, (None, False))
            if owner != self.name:  # the worker started (or the job left the queue's hands)
                self.submitted.pop(ref, None)
                continue
            since, resources = self.submitted[ref]
            if cancel_requested:
                status, error = "cancelled", None
            elif now - since > self.settings.start_timeout:
                status = "failed"
                error = (f"did not start within {self.settings.start_timeout:g} s: the cluster had no free "
                         f"{resources or 'worker'}")
            else:
                try:
                    repo.renew_lease(self.db, job_id=job_id, attempt=attempt, owner=None,
                                     lease_seconds=self.settings.lease_seconds)
                except StaleAttempt:
                    pass  # the attempt was cancelled or requeued; its task will notice and end
                continue
            self._drop(ref)
            try:
                repo.finish(self.db, job_id=job_id, attempt=attempt, status=status, error=error,
                            error_kind="user" if error else None)
            except StaleAttempt:
                pass
