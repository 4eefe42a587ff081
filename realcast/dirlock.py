"""One process per data directory: an exclusive ``flock`` on ``<data_dir>/realcast.lock``.

Layer: application (realcast); imports only the standard library.

SQLite state in a data directory is cached in the memory of the process that opened it, so a
second process on the same directory would silently diverge (a ban made through one is not
enforced by the other). The lock is held for the life of the process; the kernel releases it
when the process exits, however it exits, so a crashed server never leaves a stale lock
behind. The file also names the holder's pid, for the refusal message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Final

from .errors import DataDirInUse

__all__ = ["LOCK_FILE", "DataDirLock"]

LOCK_FILE: Final = "realcast.lock"


class DataDirLock:
    """Hold ``<data_dir>/realcast.lock`` exclusively until :meth:`release`.

    Raises:
        DataDirInUse: another process (or another open store in this process) holds it.
    """

    __slots__ = ("_fd", "path")

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        # os.open makes the descriptor non-inheritable: a child process does not keep the lock.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise DataDirInUse(data_dir, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        """Let another process have the directory (idempotent). The file stays: removing it
        would let two processes lock two different files of the same name."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode("ascii").strip())
    return None
