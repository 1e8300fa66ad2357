"""A memory-mapped file shared by every worker process on one machine, guarded by one lock.

Used when there is no Redis: the rate limiter and the API-key revocation epoch live here, so that
several gunicorn workers agree exactly without a database write per request. The mapping is opened
lazily in each process (never inherited across fork: an inherited descriptor would share the flock
and the lock would stop excluding anything), and ``flock`` serializes processes while a thread lock
serializes threads of one process.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class SharedFile:
    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self._pid: int | None = None
        self._fd = -1
        self._map: mmap.mmap | None = None
        self._thread_lock = threading.Lock()

    def _open(self) -> mmap.mmap:
        pid = os.getpid()
        if self._map is not None and self._pid == pid:
            return self._map
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            # Growing with ftruncate leaves zero bytes (a sparse file), which every user treats as empty.
            if os.fstat(fd).st_size < self.size:
                os.ftruncate(fd, self.size)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
        self._map = mmap.mmap(fd, self.size)
        self._fd = fd
        self._pid = pid
        return self._map

    @property
    def buffer(self) -> mmap.mmap:
        """The mapping, for lock-free reads of values written atomically (aligned 8-byte words)."""
        if self._map is not None and self._pid == os.getpid():
            return self._map
        with self._thread_lock:
            return self._open()

    @contextmanager
    def locked(self) -> Iterator[mmap.mmap]:
        with self._thread_lock:
            buf = self._open()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield buf
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
