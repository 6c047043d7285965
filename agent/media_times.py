"""When a clip was recorded: its start and end on the recorder's clock, from the file's
own tags, and the same moved by the recorder's clock offset measured at docking.

A tag with a zone (``Z``, ``+08:00``, ``+0800``) is an instant: it is kept in UTC
(``2026-11-22T00:30:15.000000Z``). A tag without one (AVI's ``ICRD``, EXIF-style
``2026:11:22 08:30:15``) is the recorder's local wall-clock time and stays naive, as the
times in recorder file names do: no zone is guessed for it.

"Corrected" is what the station's clock would have read at that moment: the recorder's
time minus how far its clock was ahead of the station's at docking
(``docking_sessions.clock_offset_ms``, docking.clock). It assumes the recorder's clock
kept the same error from the recording to the docking (drift is seconds a week; a clock
reset between them is not seen).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

# Tags that say when recording began, best first: QuickTime's creationdate keeps the
# recorder's own zone; creation_time (mvhd, always UTC in MP4); "date" (AVI ICRD, others).
CREATION_TAGS = ("com.apple.quicktime.creationdate", "creation_time", "date", "date_recorded")


def parse_moment(text: str | None) -> datetime | None:
    """A tag's time: aware (moved to UTC) when the tag has a zone, naive otherwise."""
    if not text:
        return None
    value = text.strip()
    if len(value) >= 19 and value[4] == ":" and value[7] == ":":
        value = value[:4] + "-" + value[5:7] + "-" + value[8:]  # EXIF's 2026:11:22 08:30:15
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
        if moment.year < 1971:
            return None  # 1904/1970 epochs: a recorder that never set its clock
    return moment


def moment_text(moment: datetime | None) -> str | None:
    """ISO text: ``...Z`` (microseconds) for an instant, naive ISO for a wall-clock time."""
    if moment is None:
        return None
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")


def recorded_start(tags: dict[str, str]) -> tuple[str | None, str | None]:
    """(the name of the tag used, the start on the recorder's clock), first tag that parses."""
    lowered = {key.casefold(): value for key, value in tags.items()}
    for name in CREATION_TAGS:
        moment = parse_moment(lowered.get(name))
        if moment is not None:
            return name, moment_text(moment)
    return None, None


def end_of(start: str | None, duration_ms: int | None) -> str | None:
    """The start plus the duration, in the start's own form."""
    moment = parse_moment(start)
    if moment is None or duration_ms is None:
        return None
    return moment_text(moment + timedelta(milliseconds=duration_ms))


def corrected(recorder_time: str | None, offset_ms: int | None) -> str | None:
    """The recorder's time moved by its clock offset (how far it was ahead of the
    station's, in ms): what the station's clock would have said, in the same form."""
    moment = parse_moment(recorder_time)
    if moment is None or offset_ms is None:
        return None
    return moment_text(moment - timedelta(milliseconds=offset_ms))
