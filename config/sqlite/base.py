"""SQLite with a fair, prompt hand-off of the write lock between the workers of one machine.

SQLite lets one writer in at a time. A writer that finds the lock taken waits in SQLite's busy
handler, which sleeps 1, 2, 5, 10, 15 … ms between attempts: under concurrent ingest most of a
worker's time went to sleeping past the moment the lock was free (687 single-log writes/s with two
workers, where each write costs about 1 ms). Here a transaction first takes an ``flock`` on a file
beside the database, which the kernel hands to the next waiter the moment it is released, then
``BEGIN IMMEDIATE``. The wait is bounded by the busy timeout: past it, the transaction goes ahead
and SQLite's own locking decides, as before, so a holder that never lets go cannot wedge anyone.
In-memory databases (tests) have no file and skip all this.
"""

from __future__ import annotations

import fcntl
import os
import time
from typing import Any

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    _writer_fd: int | None = None

    def _writer_lock_path(self) -> str | None:
        if self.is_in_memory_db():
            return None
        return f"{self.settings_dict['NAME']}.writer-lock"

    def _acquire_writer_lock(self) -> None:
        path = self._writer_lock_path()
        if path is None or self._writer_fd is not None:
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + float(self.settings_dict["OPTIONS"].get("timeout", 5))
        pause = 0.0001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._writer_fd = fd
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)  # leave it to SQLite's busy handling
                    return
                # Short, capped pauses: a blocking flock would wait forever on a holder that is
                # itself waiting for this thread (a test holding a transaction open, say).
                time.sleep(pause)
                pause = min(pause * 2, 0.002)

    def _release_writer_lock(self) -> None:
        fd, self._writer_fd = self._writer_fd, None
        if fd is not None:
            os.close(fd)  # closing releases the flock

    def _start_transaction_under_autocommit(self) -> None:
        self._acquire_writer_lock()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writer_lock()
            raise

    def _commit(self) -> Any:
        try:
            return super()._commit()
        finally:
            self._release_writer_lock()

    def _rollback(self) -> Any:
        try:
            return super()._rollback()
        finally:
            self._release_writer_lock()

    def _close(self) -> Any:
        try:
            return super()._close()
        finally:
            self._release_writer_lock()
