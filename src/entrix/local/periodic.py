"""The background loop the local scheduler and TTL sweeper share."""

from __future__ import annotations

import threading


class Periodic:
    """Calls `tick()` every `interval` seconds on a daemon thread, from `start()` to `stop()`."""

    def __init__(self, name: str, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def tick(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.tick()
