"""Errors of the copy+hash engine; each message says what happened and what to do.

::

    HashingError                    base: the clip was not committed
    ├── SourceReadError             I/O error, short read, recorder unplugged
    ├── SourceChangedError          size or mtime changed while the file was read
    ├── NotRegularFileError         symlink, FIFO, device or folder: never copied
    ├── StoreFullError              ENOSPC / EDQUOT on the station's disk
    └── CopyVerificationError       the copy on disk differs from what was read

``CopyVerificationError`` is an integrity failure: it is recorded and never retried.
The others leave the recorder untouched, so the clip can be copied again once the
cause is fixed (a ``SourceReadError`` keeps the staged prefix for a resumed copy).
"""

from __future__ import annotations


class HashingError(Exception):
    """A file could not be copied into the evidence store; nothing was committed."""


class SourceReadError(HashingError):
    """Reading the recorder's file failed (I/O error, short read, device gone)."""


class SourceChangedError(HashingError):
    """The recorder's file changed size or modification time while it was read."""


class NotRegularFileError(HashingError):
    """The path is not a regular file (symlink, FIFO, device, folder)."""


class StoreFullError(HashingError):
    """The station's disk (or the evidock user's quota) is full."""


class CopyVerificationError(HashingError):
    """The copy re-read from disk differs from the bytes read from the recorder."""
