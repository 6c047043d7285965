"""Which clips a case holds: one replay of the case's links over the ledger's leaves.

A ``case.linked`` / ``case.unlinked`` leaf names one clip or one docking session. A
session's clips are every clip seen in it: the ``clip.ingested`` leaves (new content) and
the ``clip.redocked`` leaves (content docked before, seen again in this session). Links
are replayed in ledger order and later events win, so unlinking one clip of a
session-linked case removes that clip, and linking the session again brings it back.

Case numbers are compared in their normal form (``config.case_numbers``): a link leaf
holds the normal form in ``case_number`` (and what was typed in ``case_number_typed``);
leaves written before that hold what was typed, and are folded as they are read, so
``朝执罚[2026]12号`` and ``朝执罚（2026）12号`` find the same clips whenever they were linked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from config.case_numbers import fold_case_number
from ledger.leaf import CASE_LINKED, CASE_UNLINKED, CLIP_INGESTED, CLIP_REDOCKED, Leaf
from ledger.log import Ledger

SessionClips = Callable[[str], Sequence[str]]

_SEEN = (CLIP_INGESTED, CLIP_REDOCKED)


def case_key(case_number: str) -> str:
    """A case number in its normal form, as new leaves store it and lookups compare it."""
    return fold_case_number(case_number)


def same_case(stored: object, case_number: str) -> bool:
    """Whether a leaf's ``case_number`` value names the case ``case_number`` (any form)."""
    return isinstance(stored, str) and fold_case_number(stored) == case_key(case_number)


def case_leaves(ledger: Ledger, case_number: str) -> list[Leaf]:
    """Every leaf naming the case in any of its forms, in index order.

    The lookup column holds each number as its leaf wrote it: the distinct numbers are
    folded (few, against many leaves) and the leaves of those that match are read.
    """
    key = case_key(case_number)
    stored = [
        str(row[0])
        for row in ledger.conn.execute(
            "SELECT DISTINCT case_number FROM ledger_leaves WHERE case_number IS NOT NULL"
        )
    ]
    found: dict[int, Leaf] = {}
    for value in stored:
        if fold_case_number(value) == key:
            found.update((leaf.index, leaf) for leaf in ledger.find(case_number=value))
    return [found[index] for index in sorted(found)]


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
    """The clips ``case_number`` (any form) holds now, through the ledger's lookup columns."""

    def session_clips(session_id: str) -> list[str]:
        return _clip_ids(ledger.find(session_id=session_id))

    return replay_links(case_leaves(ledger, case_number), session_clips)


def case_members_of(leaves: Iterable[Leaf], case_number: str) -> dict[str, Leaf]:
    """The same replay over a plain sequence of leaves (one pass, no database indexes)."""
    key = case_key(case_number)
    links: list[Leaf] = []
    sessions: dict[str, list[Leaf]] = {}
    for leaf in leaves:
        if leaf.kind in (CASE_LINKED, CASE_UNLINKED) and (
            same_case(leaf.body.get("case_number"), key)
        ):
            links.append(leaf)
        elif leaf.kind in _SEEN and isinstance(leaf.body.get("session_id"), str):
            sessions.setdefault(leaf.body["session_id"], []).append(leaf)
    return replay_links(links, lambda session_id: _clip_ids(sessions.get(session_id, [])))
