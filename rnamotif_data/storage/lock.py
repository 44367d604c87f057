"""One build per store at a time: an exclusive lock file inside the store.

``ROOT/.rnamotif-build.lock`` is created exclusively (``O_CREAT | O_EXCL`` on local
disks) and holds who took it: user, host, process id and start time. A second build of
the same store is refused with that information. A lock whose process no longer runs on
this host is stale: it is taken over with a warning that says so. A lock from another
host cannot be checked from here: the message says how to remove it once that build is
known to be gone. The lock is left out of the store's checksums and removed when the
build ends, however it ends.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import os
import socket

from rnamotif_data.errors import StoreError
from rnamotif_data.storage.layout import is_local, join, put_bytes, url_to_fs

log = logging.getLogger("rnamotif_data.pipeline.builder")

__all__ = ["LOCK_FILE", "BuildLock"]

LOCK_FILE = ".rnamotif-build.lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class BuildLock:
    """Exclusive lock of a store for the duration of a build (a context manager).

    Raises
    ------
    StoreError
        On entry, if another live build holds the lock (naming its user, host, process
        and start time).
    """

    def __init__(self, root: str):
        self.root = str(root)
        self.fs, self.path = url_to_fs(join(self.root, LOCK_FILE))
        self.info = {"user": _user(), "host": socket.gethostname(), "pid": os.getpid(),
                     "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        self.held = False

    def __enter__(self) -> "BuildLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock (see the module docstring)."""
        blob = json.dumps(self.info).encode()
        for _ in range(2):
            if self._create(blob):
                self.held = True
                return
            other = self._holder()
            if other.get("host") == self.info["host"] and isinstance(other.get("pid"), int) \
                    and not _alive(other["pid"]):
                log.warning("%s: stale lock of process %s (started %s) removed: that build no longer runs",
                            self.root, other.get("pid"), other.get("started"))
                self.fs.rm(self.path)
                continue
            raise StoreError(
                f"{self.root}: another build is writing this store ({other.get('user', '?')}@"
                f"{other.get('host', '?')}, pid {other.get('pid', '?')}, since {other.get('started', '?')}); "
                f"wait for it, or if it is gone remove {self.path}")
        raise StoreError(f"{self.root}: could not take the build lock {self.path}")

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if self.held:
            try:
                if self._holder().get("pid") == self.info["pid"]:
                    self.fs.rm(self.path)
            except (OSError, FileNotFoundError):
                pass
            self.held = False

    def _create(self, blob: bytes) -> bool:
        if is_local(self.fs):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            return True
        if self.fs.exists(self.path):  # object stores: no O_EXCL; best effort
            return False
        put_bytes(join(self.root, LOCK_FILE), blob)
        return self._holder().get("pid") == self.info["pid"]

    def _holder(self) -> dict:
        try:
            return json.loads(self.fs.cat_file(self.path))
        except (OSError, ValueError, FileNotFoundError):
            return {}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "?"
