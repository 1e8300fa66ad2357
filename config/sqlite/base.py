"""SQLite with a fair, prompt hand-off of the write lock between the workers of one machine.

SQLite lets one writer in at a time. A writer that finds the lock taken waits in SQLite's busy
handler, which sleeps 1, 2, 5, 10, 15 … ms between attempts: under concurrent ingest most of a
worker's time went to sleeping past the moment the lock was free (687 single-log writes/s with two
workers, where each write costs about 1 ms). Here a transaction first takes an ``flock`` on a file
beside the database, which the kernel hands to the next waiter the moment it is released, then
``BEGIN IMMEDIATE``. The wait is bounded by the busy timeout: past it, the transaction goes ahead
and SQLite's own locking decides, as before, so a holder that never lets go cannot wedge anyone.
In-memory databases (tests) have no file and skip all this.

Checkpoints. SQLite copies the write-ahead log back into the database (a checkpoint, with two
fsyncs) inside the COMMIT that makes the log pass 1,000 pages: that commit held our lock while the
pages were copied, and every other writer queued. Here SQLite's automatic checkpoint is only a
backstop (10,000 pages): each connection runs a PASSIVE checkpoint itself every 250 commits, right
after releasing the lock, so the other workers keep writing meanwhile. (A background thread doing
it measured worse: checkpoints racing the writes rarely caught up, so the log kept growing.)
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Sequence
from typing import Any

from django.db.backends.sqlite3 import base

CHECKPOINT_EVERY_COMMITS = 250
WAL_AUTOCHECKPOINT_PAGES = 10_000


class DatabaseWrapper(base.DatabaseWrapper):
    _writer_fd: int | None = None
    _commits_since_checkpoint = 0
    _rollbacks = 0

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        connection = super().get_new_connection(conn_params)
        if not self.is_in_memory_db():
            connection.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        return connection

    def _checkpoint_if_due(self) -> None:
        # The log file keeps its size when SQLite rewinds it, so its length says nothing about
        # what is left to copy: count commits instead.
        if self.is_in_memory_db() or self.connection is None:
            return
        self._commits_since_checkpoint += 1
        if self._commits_since_checkpoint >= CHECKPOINT_EVERY_COMMITS:
            self._commits_since_checkpoint = 0
            self.connection.execute("PRAGMA wal_checkpoint(PASSIVE)")

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
            self._checkpoint_if_due()

    def _rollback(self) -> Any:
        self._rollbacks += 1
        try:
            return super()._rollback()
        finally:
            self._release_writer_lock()

    def _savepoint_rollback(self, sid: str) -> None:
        self._rollbacks += 1
        super()._savepoint_rollback(sid)

    def execute_direct(self, sql: str, params: Sequence[Any]) -> Any:
        """Run one statement written in Django's ``%s`` style on the driver's own connection, for
        ingest's statements inside the write lock: Django's cursor wrapper re-parses every
        statement with a regex. Errors still become Django's."""
        with self.wrap_database_errors:
            return self.connection.execute(sql.replace("%s", "?"), params)

    def change_token(self) -> tuple[int, ...]:
        """A value that differs whenever the database may have changed since it was last taken:
        another connection committed (``data_version``), this one changed rows (``total_changes``,
        committed or not) or undid changes (a rollback). Aggregates cached under it are exact."""
        self.ensure_connection()
        raw = self.connection
        (version,) = raw.execute("PRAGMA data_version").fetchone()
        return (id(raw), version, raw.total_changes, self._rollbacks)

    def _close(self) -> Any:
        try:
            return super()._close()
        finally:
            self._release_writer_lock()
