"""StreamSlots: how many live event streams each user holds open, with a cap.

Each open stream polls the database (in the thread pool) twice a second for as long as it lasts, so
one user with many tabs or a script that opens streams in a loop could crowd out everyone else. A
user at the cap gets a 429 until one of their streams closes. Counted per API process.
"""

from __future__ import annotations

import threading
from collections import Counter

from fastapi import HTTPException

RETRY_AFTER_SECONDS = 5


class StreamSlots:
    def __init__(self, per_user: int):
        self.per_user = per_user
        self._open: Counter[int] = Counter()
        self._lock = threading.Lock()

    def take(self, user_id: int) -> None:
        """Count a new stream for `user_id`, or answer 429 if they already hold `per_user`."""
        with self._lock:
            if self._open[user_id] >= self.per_user:
                raise HTTPException(429, f"you already follow {self.per_user} event streams (the most one user may "
                                         "hold open); close one and retry",
                                    headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
            self._open[user_id] += 1

    def give_back(self, user_id: int) -> None:
        with self._lock:
            self._open[user_id] -= 1
            if self._open[user_id] <= 0:
                del self._open[user_id]

    def held(self, user_id: int) -> int:
        with self._lock:
            return self._open[user_id]
