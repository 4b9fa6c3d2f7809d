"""A small in-process cache for responses that can no longer change."""

import threading
from collections import OrderedDict
from collections.abc import Hashable


class ImmutableResponses:
    """Least-recently-used bytes, up to a total size. Only for answers that no later write can change,
    so no entry ever needs invalidating and each API process may keep its own: a succeeded run is never
    written again (only the worker that owns a run writes its outcome, and never over a success)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: bytes) -> None:
        if len(value) > self.max_bytes // 8:  # one huge history must not flush everything else
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self.size += len(value) - (len(old) if old is not None else 0)
            self._entries[key] = value
            while self.size > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.size -= len(evicted)
