"""Durable file writes for the state log: whole writes, fsyncs of files and of directories.

Every function may block on the disk; the state log calls them on the event loop
only when ``fsync_interval`` is 0 (or at start and stop), else in an executor.
"""

from __future__ import annotations

import os
from pathlib import Path


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
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)
