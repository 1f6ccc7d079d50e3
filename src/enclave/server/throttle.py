"""Sign-in throttling: refuses a user name after repeated failed passwords."""

import threading
import time
from collections import deque


class LoginThrottle:
    """Refuses sign-ins for a user name after repeated failures (password guessing)."""

    def __init__(self, failures: int = 5, window_s: float = 300.0):
        self.limit, self.window = failures, window_s
        self.recent: dict[str, deque[float]] = {}
        self.lock = threading.Lock()

    def _prune(self, name: str) -> deque[float]:
        times = self.recent.setdefault(name, deque())
        while times and times[0] < time.monotonic() - self.window:
            times.popleft()
        return times

    def blocked(self, name: str) -> bool:
        with self.lock:
            return len(self._prune(name)) >= self.limit

    def failed(self, name: str) -> None:
        with self.lock:
            self._prune(name).append(time.monotonic())

    def succeeded(self, name: str) -> None:
        with self.lock:
            self.recent.pop(name, None)
