"""Durable file writes for the state log: whole writes, fsyncs of files and of directories.

Every function may block on the disk; the state log calls them on the event loop
only when ``fsync_interval`` is 0 (or at start and stop), else in an executor.

Every file of the state directory is opened by :func:`open_private`: with
``O_NOFOLLOW``, then checked once open (a regular file owned by the gateway's user
and writable by nobody else; :func:`check_private` for the directory itself).
Anything else raises :class:`OSError` naming the file, which stops startup with one
line: a symlink planted in the directory cannot make the gateway write through it,
nor feed it another user's file.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path


def open_private(path: Path, flags: int) -> int:
    """``os.open`` without following a symlink (a created file is 0640), then :func:`check_private`."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(errno.ELOOP, f"{path.name} is a symbolic link") from None
        raise
    try:
        check_private(os.fstat(fd), path, stat.S_ISREG)
    except OSError:
        os.close(fd)
        raise
    return fd


def check_private(st: os.stat_result, path: Path, kind: Callable[[int], bool]) -> None:
    """``path`` (opened or stat'ed as ``st``) is of ``kind``, the gateway's user's, writable by no one else."""
    if not kind(st.st_mode):
        raise OSError(errno.EINVAL, f"{path.name} is not a {'directory' if kind is stat.S_ISDIR else 'regular file'}")
    if st.st_uid != os.geteuid():
        raise OSError(errno.EPERM, f"{path.name} is owned by uid {st.st_uid}, not by the gateway's ({os.geteuid()})")
    if st.st_mode & 0o022:
        raise OSError(errno.EPERM, f"{path.name} is writable by group or others (mode {oct(st.st_mode & 0o777)})")


def read_private(path: Path) -> bytes:
    with os.fdopen(open_private(path, os.O_RDONLY), "rb") as fh:
        return fh.read()


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_and_close(fd: int, directory: Path | None = None) -> None:
    """Fsync and close ``fd``; then fsync ``directory`` too, if given."""
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    if directory is not None:
        fsync_dir(directory)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)
