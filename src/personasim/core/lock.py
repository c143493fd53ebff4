"""One writer at a time: an exclusive advisory lock on a directory, held for a writer's life.

A writer of a run directory or of a parts folder takes the folder's lock before it writes and
keeps it until it is done::

    with directory_lock(folder):          # a second writer gets LockedError at once
        ...
    with directory_lock(folder, wait=30): # or waits up to 30 s for the first to finish
        ...

How it works: ``fcntl.flock(LOCK_EX | LOCK_NB)`` on a file named :data:`LOCK_FILE` inside the
folder. Once the lock is taken, the holder writes who it is (pid, host, start time, command
line) into that file, so a refused writer can name it in its one-line error. The holder removes
the file when it lets go (while still holding it), so a finished writer leaves nothing behind; a
writer that got the lock checks that its open file is still the one at the path (same inode)
and starts over otherwise, so a file removed under a waiting writer never gives two holders.

* **Crash**: the kernel releases a ``flock`` when the last descriptor of its open file goes
  away, so the lock of a writer killed with ``kill -9`` is free at once; the next writer takes
  it and rewrites the holder record (the file of a killed writer is the one thing it leaves,
  harmless and reused). The record is only ever read to word the error message:
  whether a folder is locked is decided by ``flock`` alone, never by the pid in the file.
* **Re-entrant in one process**: ``flock`` locks belong to an open file description, so a
  second ``open`` + ``flock`` of the same file in the same process would be refused. A
  process-wide registry (keyed by the folder's real path) counts nested holds instead; the lock
  is released when the outermost ``with`` ends. Threads of one process share a hold that one
  of them took; two threads taking the same folder's lock for the first time at the same moment
  are not supported (the second is refused as if it were another process).
* **Children**: the descriptor is not inherited by programs started with ``exec`` (it is
  opened close-on-exec), and a child made by a bare ``fork`` closes its copy at once, so no
  child keeps a folder locked after its parent died.
* **NFS and other network file systems**: the lock is reliable between processes of one
  machine on a local disk. On Linux, ``flock`` on NFS is emulated with byte-range locks served
  by the NFS lock manager; it excludes writers on different clients only when that service runs
  (otherwise ``flock`` fails with ``ENOLCK``, reported here as a one-line error), a client that
  loses the server may see its lock recovered by another, and some network or FUSE file systems
  keep locks local to each machine. Do not rely on it between machines sharing a folder over
  the network: run one writer per folder there by arrangement.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from personasim.core.errors import ConfigError, LockedError
from personasim.core.tables import pid_alive

LOCK_FILE = ".lock"
"""The lock file inside a locked folder while it is held (dot-named: skipped by part listings
and pyarrow); removed when its holder lets go."""
POLL_SECONDS = (0.01, 0.2)
"""First and longest pause between two tries while waiting for a lock."""
RECORD_WAIT_SECONDS = 0.5
"""How long a refused writer waits for a just-started holder to write its record."""


@dataclass(frozen=True)
class Holder:
    """Who holds a folder's lock, as the holder wrote it into :data:`LOCK_FILE`."""

    pid: int
    """Process id of the holder (on ``host``)."""
    host: str
    """Host name of the holder's machine."""
    since: float
    """When the holder took the lock (seconds since the epoch)."""
    command: str
    """The holder's command line (shortened)."""

    def describe(self) -> str:
        """``pid 1234 on host X since 2026-12-02 17:40:01``."""
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        return f"pid {self.pid} on host {self.host} since {started}"


@dataclass
class _Hold:
    """This process's hold of one folder's lock."""

    fd: int
    """The locked open file."""
    path: Path
    """The lock file."""
    depth: int
    """Nested ``with`` blocks holding it."""
    created: bool
    """Whether taking the lock created the folder (removed again when left empty)."""


_HELD: dict[str, _Hold] = {}
_REGISTRY = threading.Lock()


def _forget_after_fork() -> None:
    """In a forked child: close the inherited lock descriptors (the parent's locks stay held:
    a ``flock`` ends only when every descriptor of its open file is closed)."""
    for hold in _HELD.values():
        with contextlib.suppress(OSError):
            os.close(hold.fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


def this_holder() -> Holder:
    """The record this process writes when it takes a lock."""
    words = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    command = " ".join(words)
    return Holder(
        os.getpid(),
        socket.gethostname(),
        time.time(),
        command if len(command) <= 200 else command[:197] + "...",
    )


def read_holder(folder: str | Path) -> Holder | None:
    """The holder record in ``folder``'s lock file (None when absent, empty or unreadable).

    Only words an error message: it may name a process that has ended (its lock was then
    freed by the kernel) and is never used to decide whether the folder is locked."""
    try:
        text = (Path(folder) / LOCK_FILE).read_text("utf-8")
        data = json.loads(text)
        return Holder(
            int(data["pid"]), str(data["host"]), float(data["since"]), str(data["command"])
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _key(folder: str | Path) -> str:
    """The registry key of a folder: its real path."""
    return os.path.realpath(folder)


def _open(folder: Path, what: str) -> int:
    """Create the folder if needed and open its lock file (close-on-exec)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as error:
        raise ConfigError(
            f"{what} {folder}: cannot create its lock file {LOCK_FILE} ({error.strerror or error})",
            hint="give a folder you can write in",
        ) from None


def _try(fd: int, folder: Path, what: str) -> bool:
    """One non-blocking try to lock ``fd``."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as error:  # ENOLCK: NFS without a lock manager; EOPNOTSUPP elsewhere
        reason = "no lock service" if error.errno == errno.ENOLCK else error.strerror
        raise ConfigError(
            f"{what} {folder}: cannot be locked ({reason})",
            hint="use a folder on a local disk (see personasim.core.lock on network file systems)",
        ) from None
    return True


def _refusal(folder: Path, what: str, waited: float) -> LockedError:
    """The one-line error naming the holder of ``folder``'s lock."""
    holder, deadline = read_holder(folder), time.monotonic() + RECORD_WAIT_SECONDS
    while holder is None and time.monotonic() < deadline:  # a holder between flock and record
        time.sleep(POLL_SECONDS[0])
        holder = read_holder(folder)
    who = holder.describe() if holder else "another process"
    after = f" (waited {waited:g} s)" if waited else ""
    gone = ""
    if holder and holder.host == socket.gethostname() and not pid_alive(holder.pid):
        gone = f"; pid {holder.pid} has ended, a process it started still holds the lock"
    command = f"the writer runs `{holder.command}`; " if holder else ""
    return LockedError(
        f"{what} {folder} is being written by {who}{after}; wait for it or stop it{gone}",
        hint=f"{command}one writer at a time; a writer that dies frees the lock "
        f"by itself, nothing to delete",
    )


def _record(fd: int) -> None:
    """Write this process's holder record into the locked file (replacing a dead holder's)."""
    holder = this_holder()
    data = (
        json.dumps(
            {
                "pid": holder.pid,
                "host": holder.host,
                "since": holder.since,
                "command": holder.command,
            }
        )
        + "\n"
    )
    written = os.pwrite(fd, data.encode("utf-8"), 0)
    os.ftruncate(fd, written)  # cut what is left of a longer record; never to 0 first (ext4
    # flushes a file truncated to 0 and rewritten when it is closed: milliseconds a lock)


def _current(fd: int, path: Path) -> bool:
    """Whether the open file ``fd`` is still the file at ``path`` (not removed by a holder that
    let go after this process opened it)."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (found.st_dev, found.st_ino) == (opened.st_dev, opened.st_ino)


def _locked_fd(folder: Path, what: str) -> tuple[int | None, bool]:
    """One try: the locked fd of the current lock file (None when another process holds it),
    and whether it is worth trying again at once (the file was replaced meanwhile)."""
    fd = _open(folder, what)
    try:
        if _try(fd, folder, what):
            if _current(fd, folder / LOCK_FILE):
                _record(fd)
                return fd, False
            os.close(fd)
            return None, True
    except BaseException:  # the record failed, or a signal arrived
        os.close(fd)
        raise
    os.close(fd)
    return None, False


def _acquire(folder: Path, wait: float, what: str) -> int:
    """Lock ``folder`` (trying for up to ``wait`` seconds) and record the holder; the fd."""
    start, pause = time.monotonic(), POLL_SECONDS[0]
    while True:
        fd, again = _locked_fd(folder, what)
        if fd is not None:
            return fd
        if again:
            continue
        left = wait - (time.monotonic() - start)
        if left <= 0:
            raise _refusal(folder, what, wait)
        time.sleep(min(pause, left))
        pause = min(pause * 2, POLL_SECONDS[1])


def _release(hold: _Hold) -> None:
    """Remove the lock file (still holding it) and the folder if the lock created it and it is
    empty (a writer that failed before writing leaves nothing), unlock and close."""
    with contextlib.suppress(OSError):
        if _current(hold.fd, hold.path):
            hold.path.unlink()
            if hold.created:
                hold.path.parent.rmdir()  # only when empty
    try:
        fcntl.flock(hold.fd, fcntl.LOCK_UN)
    finally:
        os.close(hold.fd)


@contextlib.contextmanager
def directory_lock(
    folder: str | Path, *, wait: float = 0.0, what: str = "folder"
) -> Iterator[Path]:
    """Hold ``folder``'s exclusive lock inside the ``with`` block (creating the folder and its
    :data:`LOCK_FILE` when needed, removing both when left empty); yields the lock file's path.

    Another process holding it: wait up to ``wait`` seconds (``math.inf``: until it is free),
    then raise :class:`~personasim.core.errors.LockedError` naming the holder. Held already by this
    process: entered at once (re-entrant). ``what`` names the folder in messages."""
    folder, key = Path(folder), _key(folder)
    with _REGISTRY:
        hold = _HELD.get(key)
        if hold is not None:
            hold.depth += 1
    if hold is None:
        created = not folder.exists()
        fd = _acquire(folder, wait, what)
        with _REGISTRY:
            _HELD[key] = _Hold(fd, folder / LOCK_FILE, 1, created)
    try:
        yield folder / LOCK_FILE
    finally:
        _leave(key)


def _leave(key: str) -> None:
    """End one nested hold; release the lock with the outermost."""
    with _REGISTRY:
        hold = _HELD[key]
        hold.depth -= 1
        if hold.depth:
            return
        del _HELD[key]
    _release(hold)


def run_directory_lock(
    path: str | Path, *, wait: float = 0.0
) -> contextlib.AbstractContextManager[Path]:
    """The lock of a whole run directory, held by ``personasim run`` for the life of a run (so
    two runs never write one directory's ``study.toml``, ``stages.json`` or tables at once)."""
    return directory_lock(path, wait=wait, what="run directory")


def holds(folder: str | Path) -> bool:
    """Whether this process holds ``folder``'s lock."""
    return _key(folder) in _HELD
