"""Every file cdss writes is written here, and only here.

A report, a checkpoint, a bundle, a key or a lock is written to a fresh
temporary file beside its target (created with ``O_EXCL | O_NOFOLLOW``, so a
planted file or symbolic link under that name is never opened), fsynced,
renamed into place, and the folder fsynced, so that the target is either the
old file or the whole new one: never half a file, never a file somewhere a
link pointed. Any failure removes the temporary file and becomes one
``CdssError`` naming the target and the cause (a full disk, a read-only
medium, a permission), never an ``OSError`` traceback.

The target itself must be what the caller expects: a symbolic link is refused
rather than written through, and a folder where a file is wanted (or a file
where a folder is wanted) is named as such.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

from cdss.errors import CdssError, UsageError

PRIVATE = 0o600
"""Mode for files only their owner may read (private keys)."""

PUBLIC = 0o666
"""Mode for everything else; the user's umask narrows it, as for any new file."""

_CAUSES = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file is larger than this system allows",
    errno.EROFS: "the medium is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENAMETOOLONG: "the name is too long",
}


def cause(error: OSError) -> str:
    """A short, plain reason for an ``OSError``, for one-line messages."""
    if error.errno in _CAUSES:
        return _CAUSES[error.errno]
    return (error.strerror or type(error).__name__).lower()


def write_failed(path: Path, error: OSError) -> CdssError:
    return CdssError(f"cannot write: {cause(error)}; nothing was written", file=str(path))


def check_file_target(path: Path, *, replace: bool) -> None:
    """Refuse a target that is a link, a folder or (unless ``replace``) an existing file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as error:
        raise CdssError(f"cannot be examined: {cause(error)}", file=str(path)) from None
    if info is not None:
        if stat.S_ISLNK(info.st_mode):
            raise CdssError(
                "is a symbolic link; cdss does not write through links (remove it or choose another name)",
                file=str(path),
            )
        if stat.S_ISDIR(info.st_mode):
            raise UsageError(f"{path} is a folder; give the name of a file to write")
        if not stat.S_ISREG(info.st_mode):
            raise UsageError(f"{path} is not a regular file; give the name of a file to write")
        if not replace:
            raise UsageError(f"{path} already exists; choose a new name")
    _check_parent(path)


def _check_parent(path: Path) -> None:
    parent = path.parent
    if not parent.exists():
        raise UsageError(f"folder {parent} does not exist")
    if not parent.is_dir():
        raise UsageError(f"{parent} is not a folder")


def check_folder_target(path: Path) -> None:
    """Refuse a folder target that is a file or a link to nothing; a missing folder's parent must exist."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        _check_parent(path)
        return
    except OSError as error:
        raise CdssError(f"cannot be examined: {cause(error)}", file=str(path)) from None
    if stat.S_ISLNK(info.st_mode) and not path.is_dir():
        raise UsageError(f"{path} is a symbolic link that leads to no folder; give a folder")
    if not path.is_dir():
        raise UsageError(f"{path} is a file, not a folder; give a folder (it is created when missing)")


def ensure_folder(path: Path) -> None:
    """Create the folder ``path`` unless it exists; refuse a file or a dangling link."""
    check_folder_target(path)
    try:
        path.mkdir(exist_ok=True)
    except OSError as error:
        raise CdssError(f"cannot create the folder: {cause(error)}", file=str(path)) from None


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError as error:
        # Some file systems cannot fsync a folder; the rename is then as durable as they allow.
        if error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(descriptor)


def _create_temporary(path: Path, mode: int) -> tuple[Path, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return temporary, os.open(temporary, flags, mode)
        except FileExistsError:  # a planted name, or a (very) unlucky draw: draw again
            continue


def _put_in_place(temporary: Path, path: Path, *, replace: bool) -> None:
    if replace:
        os.replace(temporary, path)  # replaces a link planted meanwhile; never writes through it
        return
    try:
        os.link(temporary, path)  # fails if anything, even a dangling link, took the name meanwhile
    except FileExistsError:
        raise UsageError(f"{path} already exists; choose a new name") from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if os.path.lexists(path):  # a file system without hard links: check, then rename
            raise UsageError(f"{path} already exists; choose a new name") from None
        os.rename(temporary, path)
        return
    os.unlink(temporary)


@contextmanager
def writing(path: Path, *, replace: bool = True, mode: int = PUBLIC) -> Iterator[BinaryIO]:
    """A binary handle whose content becomes ``path`` when the block ends without an error.

    ``replace=False`` refuses an existing ``path``, also one created while
    writing. On any failure the temporary file is removed and ``path`` is
    left as it was.
    """
    check_file_target(path, replace=replace)
    try:
        temporary, descriptor = _create_temporary(path, mode)
    except OSError as error:
        raise write_failed(path, error) from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _put_in_place(temporary, path, replace=replace)
        _fsync_folder(path.parent)
    except OSError as error:
        raise write_failed(path, error) from None
    finally:
        _remove_quietly(temporary)


def write_bytes(path: Path, data: bytes, *, replace: bool = True, mode: int = PUBLIC) -> None:
    """Write ``data`` to ``path`` atomically and durably (see ``writing``)."""
    with writing(path, replace=replace, mode=mode) as handle:
        handle.write(data)


def write_text(path: Path, text: str, *, replace: bool = True, mode: int = PUBLIC) -> None:
    """Write ``text`` as UTF-8 to ``path`` atomically and durably (see ``writing``)."""
    write_bytes(path, text.encode("utf-8"), replace=replace, mode=mode)


@contextmanager
def new_folder(path: Path) -> Iterator[Path]:
    """A private work folder that becomes the new folder ``path`` when the block ends without an error.

    Everything written inside is fsynced before the rename; on any failure
    the work folder is removed and ``path`` is not created.
    """
    check_file_target(path, replace=False)
    try:
        work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    except OSError as error:
        raise write_failed(path, error) from None
    try:
        yield work
        place_folder(work, path)
    except OSError as error:
        raise write_failed(path, error) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def place_folder(work: Path, path: Path) -> None:
    """Make the finished private folder ``work`` (beside ``path``) the new folder ``path``, durably."""
    try:
        _sync_tree(work)
        if os.path.lexists(path):
            raise UsageError(f"{path} already exists; choose a new name")
        os.rename(work, path)
        _fsync_folder(path.parent)
    except OSError as error:
        raise write_failed(path, error) from None


def _sync_tree(folder: Path) -> None:
    for root, _, names in os.walk(folder):
        for name in names:
            descriptor = os.open(os.path.join(root, name), os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        _fsync_folder(Path(root))


def _remove_quietly(path: Path) -> None:
    with suppress(OSError):  # already renamed into place, or the folder went away: nothing to undo
        os.unlink(path)
