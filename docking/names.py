"""File names as a recorder wrote them: raw bytes, shown as text without losing a byte.

FAT volumes written by cheap firmware can hold names that are not valid UTF-8; the scan
keeps every name as bytes, and these helpers give the text for people and the exact
bytes (base64) for the ledger.
"""

from __future__ import annotations

import base64


def display_path(rel_path: bytes) -> str:
    """UTF-8 text of a name; bytes that are not UTF-8 appear as ``\\xNN`` escapes."""
    return rel_path.decode("utf-8", errors="backslashreplace")


def path_b64(rel_path: bytes) -> str | None:
    """Base64 of the raw name when it is not valid UTF-8 (else None: the text is exact)."""
    try:
        rel_path.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(rel_path).decode("ascii")
    return None


def raw_path(text: str, b64: str | None) -> bytes:
    """The name's exact bytes back from its recorded form (``display_path`` text and
    ``path_b64``, which is set when the name is not UTF-8)."""
    return base64.b64decode(b64) if b64 else text.encode("utf-8")
