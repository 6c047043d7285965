"""Folder trees deeper than a path can name: made and removed through descriptors.

``shutil.rmtree`` recurses (and pytest's clean-up of old temporary folders with it),
so a test that makes one removes it with :func:`remove_tree`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEPTH = 1000
LEVEL = b"folder"  # 1000 levels of "folder/" make a path of 7,000 bytes (PATH_MAX is 4,096)
DEEP_NAME = b"20261122_083015_9999.MP4"


def make_deep(root: Path, depth: int, data: bytes, level: bytes = LEVEL) -> bytes:
    """A chain of ``depth`` folders with one file at the bottom; returns its rel path."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir(level, dir_fd=fd)
            child = os.open(level, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        out = os.open(DEEP_NAME, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        try:
            os.write(out, data)
        finally:
            os.close(out)
    finally:
        os.close(fd)
    return b"/".join([level] * depth) + b"/" + DEEP_NAME


def remove_tree(root: Path) -> None:
    """Remove a tree of any depth, depth first with an explicit stack."""
    stack = [(os.open(root, os.O_RDONLY | os.O_DIRECTORY), "")]
    try:
        while stack:
            fd = stack[-1][0]
            folder = None
            for name in os.listdir(fd):
                if stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                    folder = name
                    break
                os.unlink(name, dir_fd=fd)
            if folder is not None:
                stack.append((os.open(folder, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd), folder))
                continue
            fd, name = stack.pop()
            os.close(fd)
            if stack:
                os.rmdir(name, dir_fd=stack[-1][0])
    finally:
        for fd, _ in stack:
            os.close(fd)
    os.rmdir(root)


@contextmanager
def deep_folder(root: Path) -> Iterator[Path]:
    """An empty folder ``root`` for a deep tree, removed afterwards (pass or fail)."""
    root.mkdir()
    try:
        yield root
    finally:
        remove_tree(root)
