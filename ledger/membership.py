"""Which clips a case holds: one replay of the case's links over the ledger's leaves.

A ``case.linked`` / ``case.unlinked`` leaf names one clip or one docking session. A
session's clips are every clip seen in it: the ``clip.ingested`` leaves (new content) and
the ``clip.redocked`` leaves (content docked before, seen again in this session). Links
are replayed in ledger order and later events win, so unlinking one clip of a
session-linked case removes that clip, and linking the session again brings it back.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Sequence

from ledger.leaf import CASE_LINKED, CASE_UNLINKED, CLIP_INGESTED, CLIP_REDOCKED, Leaf
from ledger.log import Ledger

SessionClips = Callable[[str], Sequence[str]]

_SEEN = (CLIP_INGESTED, CLIP_REDOCKED)


def case_key(case_number: str) -> str:
    """A case number as the ledger stores it (NFC, no surrounding spaces)."""
    return unicodedata.normalize("NFC", case_number.strip())


def replay_links(links: Iterable[Leaf], session_clips: SessionClips) -> dict[str, Leaf]:
    """Clip id -> the ``case.linked`` leaf that put it in the case, as the links now stand.

    ``links`` are one case's link leaves in ledger order (other leaves are skipped);
    ``session_clips`` gives the clip ids seen in a session. Clips keep the order in which
    they joined the case.
    """
    members: dict[str, Leaf] = {}
    for leaf in links:
        if leaf.kind not in (CASE_LINKED, CASE_UNLINKED):
            continue
        clip_id, session_id = leaf.body.get("clip_id"), leaf.body.get("session_id")
        if isinstance(clip_id, str) and clip_id:
            targets: Sequence[str] = [clip_id]
        elif isinstance(session_id, str) and session_id:
            targets = session_clips(session_id)
        else:
            targets = []
        for target in targets:
            if leaf.kind == CASE_LINKED:
                members.setdefault(target, leaf)
            else:
                members.pop(target, None)
    return members


def _clip_ids(leaves: Iterable[Leaf]) -> list[str]:
    seen: dict[str, None] = {}
    for leaf in leaves:
        clip_id = leaf.body.get("clip_id")
        if leaf.kind in _SEEN and isinstance(clip_id, str):
            seen.setdefault(clip_id)
    return list(seen)


def case_members(ledger: Ledger, case_number: str) -> dict[str, Leaf]:
    """The clips ``case_number`` holds now, through the ledger's lookup columns."""
    key = case_key(case_number)

    def session_clips(session_id: str) -> list[str]:
        return _clip_ids(ledger.find(session_id=session_id))

    return replay_links(ledger.find(case_number=key), session_clips)


def case_members_of(leaves: Iterable[Leaf], case_number: str) -> dict[str, Leaf]:
    """The same replay over a plain sequence of leaves (one pass, no database indexes)."""
    key = case_key(case_number)
    links: list[Leaf] = []
    sessions: dict[str, list[Leaf]] = {}
    for leaf in leaves:
        if leaf.kind in (CASE_LINKED, CASE_UNLINKED) and leaf.body.get("case_number") == key:
            links.append(leaf)
        elif leaf.kind in _SEEN and isinstance(leaf.body.get("session_id"), str):
            sessions.setdefault(leaf.body["session_id"], []).append(leaf)
    return replay_links(links, lambda session_id: _clip_ids(sessions.get(session_id, [])))
