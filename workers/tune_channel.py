"""TuneChannel: between a Tune driver and the search it serves, finished trials up and the cancel flag down.

A module of its own that imports nothing but Ray: the channel's actor is a new worker process started just as the
trials' own processes import torch and Tune, and on a small machine every second of import competes with them.
"""

from __future__ import annotations

import ray


@ray.remote(num_cpus=0)
class TuneChannel:
    def __init__(self) -> None:
        self.events: list[tuple[str, float]] = []
        self.cancelled = False

    def finished(self, text: str, accuracy: float) -> None:
        self.events.append((text, accuracy))

    def take(self) -> list[tuple[str, float]]:
        events, self.events = self.events, []
        return events

    def cancel(self) -> None:
        self.cancelled = True

    def is_cancelled(self) -> bool:
        return self.cancelled
