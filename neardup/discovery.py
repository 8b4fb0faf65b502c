"""Finding candidate image files under the roots the user names."""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field


__all__ = ["FoundFile", "PathError", "check_roots", "is_candidate", "iter_files"]

# Formats Pillow only reads through plugins (pillow-heif, pillow-jxl...);
# listing them means such photos are reported rather than silently ignored.
_EXTRA_EXTENSIONS = frozenset({".heic", ".heif", ".avif", ".jxl"})

Errors = list[tuple[str, str]]
Statted = list[tuple[str, os.stat_result]]


@dataclass(frozen=True)
class FoundFile:
    """A candidate file; ``path`` is absolute and may hold surrogate escapes."""

    path: str
    size: int
    mtime: float


class PathError(ValueError):
    """A root argument is unusable; the message is one line naming it."""


def check_roots(roots: Sequence[str]) -> list[str]:
    """Absolute, normalised roots; raise :class:`PathError` on the first bad one."""
    return [_check_root(os.fsdecode(root)) for root in roots]


# Extensions every Pillow opens: answered without loading its ~40 plugins (50 ms), which only a
# rarer extension needs. tests/test_discovery.py checks each is in the full registry.
COMMON_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"})


def is_candidate(name: str) -> bool:
    """Does the file name have an image extension (case-insensitive)?"""
    ext = os.path.splitext(name)[1].lower()
    return ext in COMMON_EXTENSIONS or ext in _image_extensions()


def iter_files(roots: Sequence[str], errors: Errors | None = None) -> Iterator[FoundFile]:
    """Candidate files under ``roots``, depth first, sorted by name at each level.

    Symbolic links are followed; each directory is walked once, so link
    loops end. Problems (unreadable directories, broken links, missing roots)
    are appended to ``errors`` as (path, reason) instead of stopping the walk.
    """
    walk = _Walk(errors if errors is not None else [])
    for root in roots:
        yield from walk.root(os.path.abspath(os.fsdecode(root)))


@functools.cache
def _image_extensions() -> frozenset[str]:
    # Pillow (and its plugins) only for a name the common set does not answer.
    from PIL import Image

    # registered_extensions() loads every Pillow plugin, so do it once. Save-only formats
    # (PDF, EPS...) are not photos Pillow can read: leave them out.
    registered = {ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
    return frozenset(registered) | _EXTRA_EXTENSIONS


def _check_root(root: str) -> str:
    try:
        info = os.stat(root)
    except (OSError, ValueError) as error:  # ValueError: embedded NUL byte
        raise PathError(f"{root}: {_describe(error)}") from None
    if stat.S_ISDIR(info.st_mode):
        # Listing a directory needs read; entering it needs execute.
        needed = os.R_OK | os.X_OK
    elif stat.S_ISREG(info.st_mode):
        needed = os.R_OK
    else:
        raise PathError(f"{root}: not a regular file or directory")
    if not os.access(root, needed):
        raise PathError(f"{root}: permission denied")
    return os.path.abspath(root)


def _describe(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return str(error).splitlines()[0] if str(error) else type(error).__name__


@dataclass
class _Walk:
    """State shared by the roots of one :func:`iter_files` call."""

    errors: Errors
    seen_dirs: set[tuple[int, int]] = field(default_factory=set)
    seen_files: set[tuple[int, int]] = field(default_factory=set)

    def root(self, path: str) -> Iterator[FoundFile]:
        try:
            info = os.stat(path)
        except OSError as error:
            self.errors.append((path, _describe(error)))
            return
        if stat.S_ISDIR(info.st_mode):
            yield from self.tree(path)
        elif stat.S_ISREG(info.st_mode):
            # A file named explicitly is wanted whatever its extension.
            yield from self.file(path, info)
        else:
            self.errors.append((path, "not a regular file or directory"))

    def tree(self, top: str) -> Iterator[FoundFile]:
        # An explicit stack, not recursion: trees can be deeper than
        # Python's recursion limit.
        pending = [top]
        while pending:
            files, subdirs = self.listing(pending.pop())
            for path, info in files:
                yield from self.file(path, info)
            pending.extend(reversed(subdirs))

    def file(self, path: str, info: os.stat_result) -> Iterator[FoundFile]:
        # One file, one row, however many names reach it (symlinks, hard links, a root named
        # twice): otherwise a photo would be grouped with itself and one of its names offered
        # for deletion.
        key = (info.st_dev, info.st_ino)
        if key not in self.seen_files:
            self.seen_files.add(key)
            yield FoundFile(os.fsdecode(path), info.st_size, info.st_mtime)

    def listing(self, directory: str) -> tuple[Statted, list[str]]:
        if not self.first_visit(directory):
            return [], []
        try:
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as error:
            self.errors.append((directory, _describe(error)))
            return [], []
        return self.split(entries)

    def first_visit(self, directory: str) -> bool:
        try:
            info = os.stat(directory)
        except OSError as error:
            self.errors.append((directory, _describe(error)))
            return False
        # (device, inode) and not the path: a link loop reaches the same
        # directory under ever longer paths.
        key = (info.st_dev, info.st_ino)
        if key in self.seen_dirs:
            return False
        self.seen_dirs.add(key)
        return True

    def split(self, entries: list[os.DirEntry[str]]) -> tuple[Statted, list[str]]:
        files: Statted = []
        subdirs: list[str] = []
        for entry in entries:
            try:
                self.sort_entry(entry, files, subdirs)
            except FileNotFoundError:
                # A plain file that vanished mid-scan has nothing left to hash.
                if entry.is_symlink():
                    self.errors.append((entry.path, "broken symbolic link"))
            except OSError as error:  # e.g. a link pointing at itself
                self.errors.append((entry.path, _describe(error)))
        return files, subdirs

    @staticmethod
    def sort_entry(entry: os.DirEntry[str], files: Statted, subdirs: list[str]) -> None:
        if entry.is_symlink():
            entry.stat()  # follow the link once so broken and looping links raise
        if entry.is_dir():
            subdirs.append(entry.path)
        elif entry.is_file() and is_candidate(entry.name):
            files.append((entry.path, entry.stat()))
