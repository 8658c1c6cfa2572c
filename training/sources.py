"""Listing and reading an artist's local image folder safely.

Folders come from every operating system and every habit: symbolic links (loops among them), FIFOs and
device files with image names, names that are not UTF-8. Each real folder is walked once, only regular
files are opened (without blocking), and everything else comes back as an entry with a problem, named
in a printable form.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from dataclasses import dataclass

CATEGORY_LINK = "link"  # symbolic link loops, folders reached twice, broken links
CATEGORY_SPECIAL = "special_file"  # FIFOs, sockets, device files
CATEGORY_UNREADABLE = "unreadable"  # folders that cannot be listed, files that cannot be opened


@dataclass(frozen=True)
class SourceEntry:
    """One name found under the source folder: a regular file to read, or something to report."""

    relative: str  # posix path from the source folder, printable (undecodable bytes as \\xNN)
    path: str  # the path to open (keeps the original bytes through surrogate escapes)
    category: str | None = None  # None for a regular file
    reason: str | None = None
    escaped: bool = False  # the name was not printable UTF-8 and `relative` shows it escaped


class NotRegularFile(OSError):
    """A path that was a regular file when listed is something else when opened."""


class FileTooLarge(OSError):
    """A file larger than ingest is willing to hold in memory."""


def printable_name(name: str) -> str:
    """A file name as text that prints, logs and round-trips through JSON and CSV.

    Bytes that are not UTF-8 (kept by Python as surrogate escapes) become \\xNN; control characters
    such as newlines become \\n, \\x1b and the like.
    """
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(character if character.isprintable() else repr(character)[1:-1] for character in text)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def walk_local(root: str) -> list[SourceEntry]:
    """Every non-hidden name under `root`, sorted by relative path.

    The real tree is walked first; symbolic links to folders are followed afterwards, each target folder
    once. A link to a folder already walked, to the source folder or to one that contains it is reported,
    not followed, so loops end and nothing is read twice.
    """
    root_real = os.path.realpath(root)
    root_stat = os.stat(root)
    visited: dict[tuple[int, int], str] = {(root_stat.st_dev, root_stat.st_ino): "."}
    entries: list[SourceEntry] = []
    folders: deque[tuple[str, str, bool]] = deque([(root, "", False)])  # path, relative prefix, escaped
    links: deque[tuple[str, str, os.stat_result, bool]] = deque()

    def add(relative: str, path: str, escaped: bool, category: str | None = None, reason: str | None = None):
        entries.append(SourceEntry(relative, path, category, reason, escaped))

    while folders or links:
        if not folders:
            path, relative, target, escaped = links.popleft()
            problem = _link_problem(path, target, root_real, visited)
            if problem:
                add(relative, path, escaped, CATEGORY_LINK, problem)
                continue
            visited[(target.st_dev, target.st_ino)] = relative
            folders.append((path, relative + "/", escaped))
            continue
        folder, prefix, prefix_escaped = folders.popleft()
        try:
            with os.scandir(folder) as scanned:
                children = sorted(scanned, key=lambda child: os.fsencode(child.name))
        except OSError as error:
            reason = f"cannot list folder: {error.strerror}"
            add(prefix.rstrip("/") or ".", folder, prefix_escaped, CATEGORY_UNREADABLE, reason)
            continue
        for child in children:
            if child.name.startswith("."):
                continue  # hidden files and folders (.DS_Store, .git, our own temporary files)
            display = printable_name(child.name)
            escaped = prefix_escaped or display != child.name
            relative = prefix + display
            try:
                if child.is_symlink():
                    try:
                        target = os.stat(child.path)
                    except OSError as error:
                        reason = (
                            "symbolic link loop"
                            if error.errno == errno.ELOOP
                            else f"broken symbolic link to {printable_name(os.readlink(child.path))}"
                        )
                        add(relative, child.path, escaped, CATEGORY_LINK, reason)
                        continue
                    if stat.S_ISDIR(target.st_mode):
                        links.append((child.path, relative, target, escaped))
                        continue
                else:
                    target = child.stat(follow_symlinks=False)
            except OSError as error:
                add(relative, child.path, escaped, CATEGORY_UNREADABLE, f"cannot inspect: {error.strerror}")
                continue
            if stat.S_ISDIR(target.st_mode):
                key = (target.st_dev, target.st_ino)
                if key in visited:  # a bind mount or hard-linked folder seen before
                    add(relative, child.path, escaped, CATEGORY_LINK, f"the same folder as {visited[key]}")
                    continue
                visited[key] = relative
                folders.append((child.path, relative + "/", escaped))
            elif stat.S_ISREG(target.st_mode):
                add(relative, child.path, escaped)
            else:
                add(relative, child.path, escaped, CATEGORY_SPECIAL, f"{_kind(target.st_mode)}, not a file")
    entries.sort(key=lambda entry: entry.relative)
    return entries


def _link_problem(path: str, target: os.stat_result, root_real: str, visited: dict[tuple[int, int], str]) -> str | None:
    """Why a symbolic link to a folder is not followed, or None to follow it."""
    target_real = os.path.realpath(path)
    if root_real == target_real or root_real.startswith(target_real.rstrip(os.sep) + os.sep):
        return f"symbolic link loop: it points to {printable_name(target_real)}, which holds the source folder"
    seen_as = visited.get((target.st_dev, target.st_ino))
    if seen_as is not None:
        parent_real = os.path.realpath(os.path.dirname(path))
        if parent_real == target_real or parent_real.startswith(target_real.rstrip(os.sep) + os.sep):
            return f"symbolic link loop: it points back to {seen_as}, a folder it lies in"
        return f"symbolic link to a folder already included as {seen_as}"
    return None


def read_regular_file(path: str, max_bytes: int) -> bytes:
    """The bytes of a regular file, refusing anything else before reading.

    O_NONBLOCK makes opening a FIFO return at once instead of waiting for a writer, so a name that became
    a FIFO after listing cannot hang ingest; fstat on the open descriptor then decides.
    """
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise NotRegularFile(f"{_kind(status.st_mode)}, not a file")
        if status.st_size > max_bytes:
            raise FileTooLarge(f"{status.st_size / 2**20:.0f} MiB, over the {max_bytes / 2**20:.0f} MiB file limit")
        chunks = []
        remaining = max_bytes + 1
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, 1 << 22))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:
        raise FileTooLarge(f"over the {max_bytes / 2**20:.0f} MiB file limit")
    return data
