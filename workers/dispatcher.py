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


def init_ray(address: str | None) -> None:
    """Join NAS_RAY_ADDRESS's cluster, or start a local single-node Ray bound to loopback."""
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
                 _node_ip_address="127.0.0.1")
    if in_main:
        signal.signal(signal.SIGTERM, handler)


class Dispatcher:
    def __init__(self, db: Database, settings: Settings):
        self.db, self.settings = db, settings
        self.name = f"dispatcher-{uuid.uuid4().hex[:8]}"
        self.running: dict = {}  # Ray ObjectRef -> (search_id, attempt)
        self._stop = threading.Event()
        self._last_expiry_check = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        import ray

        init_ray(self.settings.ray_address)
        # retries go through our queue, not Ray's
        self._tasks = {name: ray.remote(max_retries=0, num_cpus=1)(JOB_KINDS[name].run) for name in JOB_KINDS}
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
            repo.release(self.db, job_id=job_id, attempt=attempt, reason="the server shut down")
            log.info("job %s handed back to the queue", job_id)
        self.running.clear()
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
            repo.requeue_expired(self.db)  # takes SQLite's write lock: not on every poll
            self._last_expiry_check = now
        if self.running:
            done, pending = ray.wait(list(self.running), num_returns=len(self.running), timeout=0)
            for ref in pending:  # covers a worker's start-up, before its own heartbeat runs
                job_id, attempt = self.running[ref]
                try:
                    repo.renew_lease(self.db, job_id=job_id, attempt=attempt, owner=None,
                                     lease_seconds=self.settings.lease_seconds)
                except StaleAttempt:
                    pass  # the attempt was cancelled or requeued; its task will notice and end

            for ref in done:
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
            task = self._tasks[job.kind].options(**JOB_KINDS[job.kind].resources(job.config))
            ref = task.remote(self.settings.db_url, str(self.settings.data_dir.resolve()), job.id, job.attempt,
                              self.settings.lease_seconds, threads)
            self.running[ref] = (job.id, job.attempt)
