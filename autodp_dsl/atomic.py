"""Atomic file writes, the one way the project replaces a file: a temporary file in the same folder,
fsync, then ``os.replace``. A reader sees the old file or the new one, never a torn one, even if the
writer is killed.

A rename replaces a *name*, so each write also keeps what the user set up around that name:

- a symlink is written through: the file it points at is replaced, the link stays a link;
- an existing file keeps its permission bits (a new file is created 0600, as ``mkstemp`` makes it);
- a folder or a special file (device node, fifo, socket) is never replaced;
- a file with several hard links is refused unless ``force``: the rename would silently split the
  links (the other names would keep the old content).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

__all__ = ["RefusedWrite", "check_target", "commit", "kind_of", "resolve_target", "write_bytes_atomic", "write_text_atomic"]


class RefusedWrite(ValueError):
    """A write that would destroy or corrupt something that is not the file being written."""


def resolve_target(path: Path | str) -> Path:
    """The path a write to ``path`` replaces: the file a symlink points at (the link itself stays)."""
    p = Path(path)
    return Path(os.path.realpath(p)) if p.is_symlink() else p


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words, for an error message."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a fifo"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "a special file"


def check_target(path: Path | str, force: bool = False) -> os.stat_result | None:
    """Refuse a target that a rename cannot replace safely; its ``stat`` (``None`` when it does not exist)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise RefusedWrite(f"{path} is {kind_of(st.st_mode)}; refusing to replace it")
    if st.st_nlink > 1 and not force:
        raise RefusedWrite(f"{path} has {st.st_nlink} hard links; replacing it would split them "
                           "(the other names would keep the old content); use --force to replace this name anyway")
    return st


def _fsync_dir(folder: Path) -> None:
    try:  # make the rename itself durable
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def commit(tmp: Path | str, path: Path | str, force: bool = False) -> Path:
    """Move the finished temporary file ``tmp`` (in the target's folder) onto ``path`` under the rules
    above; the path written (the symlink's target when ``path`` is a symlink)."""
    target = resolve_target(path)
    st = check_target(target, force)
    if st is not None:
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
    os.replace(tmp, target)
    _fsync_dir(target.parent)
    return target


def write_bytes_atomic(path: Path | str, data: bytes, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically; the path written (see ``commit``)."""
    target = resolve_target(path)
    check_target(target, force)  # refuse before writing anything
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return commit(tmp, target, force)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_text_atomic(path: Path | str, text: str, force: bool = False) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"), force)
