"""Where backups live: a directory or an S3-compatible bucket, behind one small interface.

Snapshots, the journal, verification, retention, restores and listings only ever talk to a
``Target``, the way litestream puts a replica client under its restore planning. A target
holds two folders, ``snapshots/`` and ``journal/``, of flat files (no subfolders); names
starting with ``.`` are temporary.

A directory target reads files in place (never through a symbolic link) and makes every
write durable (fsync of the file and of the directory). A bucket target (``bucket.py``, the
``[s3]`` extra) uploads whole objects; what it lists can be read by every service.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from sharedstate.errors import ConfigurationError, SnapshotError

SNAPSHOTS = "snapshots"
JOURNAL = "journal"
FOLDERS = (SNAPSHOTS, JOURNAL)


@dataclass(frozen=True, slots=True)
class Item:
    """One file of a folder. ``refused`` says why it is never read (a symbolic link, not a
    regular file); ``mtime`` is the time it was last written."""

    name: str
    size: int
    mtime: float
    refused: str | None = None


class Blob(Protocol):
    """A file of a target that is not on the local disk: readable as a stream."""

    @property
    def name(self) -> str:
        """The file's name in its folder."""
        ...

    def open(self) -> IO[bytes]:
        """The file's bytes, from the start; SnapshotError if it cannot be read."""
        ...


Source = Path | Blob
"""Something the snapshot and journal readers read: a local file or a target's blob."""


class Target(Protocol):
    """A place backups live. Every method raises SnapshotError (with the place and the reason,
    never a credential) when the target cannot do what is asked."""

    @property
    def description(self) -> str:
        """Where this is, for messages: a path, or ``s3://bucket/prefix``."""
        ...

    @property
    def shared(self) -> bool:
        """Whether every service can reach it (a bucket), not only the one with the volume."""
        ...

    def list(self, folder: str) -> list[Item]:
        """The files of ``folder`` (temporary ``.``-files included), in no order."""
        ...

    def source(self, folder: str, name: str) -> Source:
        """The file ``name`` of ``folder``, to read."""
        ...

    def staging(self, folder: str) -> Path:
        """A local directory where a file for ``folder`` is assembled before ``publish``."""
        ...

    def publish(self, folder: str, local: Path) -> Source:
        """Make the finished local file ``local`` (in ``staging(folder)``) the file of the same
        name in ``folder``, whole or not at all, and durable once this returns."""
        ...

    def write(self, folder: str, name: str, data: bytes, unchanged: int = 0) -> None:
        """Make ``data`` the durable content of ``name`` in ``folder``. ``unchanged`` bytes at
        its start are known to be there already (a growing journal segment), so a directory
        appends only the rest."""
        ...

    def delete(self, folder: str, names: Sequence[str]) -> None:
        """Remove these files of ``folder`` (those already gone are ignored)."""
        ...


class DirectoryTarget:
    """A directory on this machine (the worker's volume): ``<root>/snapshots``, ``<root>/journal``."""

    shared = False

    def __init__(self, root: Path, snapshots: Path | None = None) -> None:
        self.root = Path(root)
        self._folders = {SNAPSHOTS: snapshots or self.root / SNAPSHOTS, JOURNAL: self.root / JOURNAL}

    @classmethod
    def of_snapshots(cls, directory: Path) -> DirectoryTarget:
        """The target whose snapshots folder is ``directory`` (its journal beside it)."""
        directory = Path(directory)
        return cls(directory.parent, snapshots=directory)

    @property
    def description(self) -> str:
        return str(self.root)

    def folder(self, folder: str) -> Path:
        """The local directory of ``folder``."""
        return self._folders[folder]

    def list(self, folder: str) -> list[Item]:
        directory = self.folder(folder)
        if not directory.is_dir():
            return []
        items = []
        for path in directory.iterdir():
            try:
                info = path.lstat()
            except OSError:
                continue  # removed meanwhile
            if stat.S_ISDIR(info.st_mode):
                continue
            refused = None
            if not stat.S_ISREG(info.st_mode):
                kind = "a symbolic link" if stat.S_ISLNK(info.st_mode) else "not a regular file"
                refused = f"{kind} (refused: backups are regular files)"
            items.append(Item(path.name, info.st_size if refused is None else 0, info.st_mtime, refused))
        return items

    def source(self, folder: str, name: str) -> Path:
        return self.folder(folder) / name

    def staging(self, folder: str) -> Path:
        directory = self.folder(folder)
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def publish(self, folder: str, local: Path) -> Path:
        # the file was written and fsynced in this very directory under a temporary name
        final = self.folder(folder) / local.name.removeprefix(".tmp-")
        os.replace(local, final)
        fsync_dir(final.parent)
        return final

    def write(self, folder: str, name: str, data: bytes, unchanged: int = 0) -> None:
        directory = self.staging(folder)
        path = directory / name
        temp = directory / f".tmp-{name}"
        try:
            if unchanged:
                with open(path, "r+b") as out:
                    try:
                        out.seek(unchanged)
                        out.write(memoryview(data)[unchanged:])
                        out.truncate()
                        out.flush()
                        os.fsync(out.fileno())
                    except OSError:
                        with contextlib.suppress(OSError):
                            out.truncate(unchanged)  # give back what a full disk half took
                        raise
                return
            with open(temp, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, path)
            fsync_dir(directory)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink(missing_ok=True)
            raise SnapshotError(path, f"cannot write: {exc.strerror or exc}") from exc

    def delete(self, folder: str, names: Sequence[str]) -> None:
        directory = self.folder(folder)
        removed = False
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                (directory / name).unlink()
                removed = True
        if removed:
            fsync_dir(directory)


def out_of_space(exc: BaseException) -> bool:
    """Whether a target's error was a full disk or quota (retrying will not help soon)."""
    cause = exc.__cause__
    return isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT)


def fsync_dir(directory: Path) -> None:
    """Make renames and unlinks in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def as_target(where: Target | Path | str) -> Target:
    """A target from a target, or from the path of a snapshots directory (the worker's layout)."""
    if isinstance(where, str | os.PathLike):
        return DirectoryTarget.of_snapshots(Path(where))
    return where


def source_size(source: Source) -> int:
    """The size of a local file (0 if gone); a blob's size as listed."""
    if isinstance(source, Path):
        try:
            return source.stat().st_size
        except OSError:
            return 0
    return int(getattr(source, "size", 0))


@contextlib.contextmanager
def local_staging(prefix: str) -> Iterator[Path]:
    """A private local directory, removed afterwards (where a bucket target assembles files)."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def open_target(url: str | None, default: Path) -> Target:
    """The target ``SHAREDSTATE_BACKUP_URL`` names: a directory (``file:///data``, a path; empty:
    ``default``) or a bucket (``s3://bucket/prefix``, credentials from the AWS variables)."""
    from sharedstate.settings import parse_backup_url

    location = parse_backup_url(url, default)
    if isinstance(location, Path):
        return DirectoryTarget(location)
    try:
        from sharedstate.durability.bucket import BucketTarget
    except ImportError as exc:  # the [s3] extra is not installed
        raise ConfigurationError(
            "SHAREDSTATE_BACKUP_URL names a bucket, which needs the s3 extra: pip install 'sharedstate[s3]'"
        ) from exc
    bucket, prefix = location
    return BucketTarget.from_environment(bucket, prefix)
