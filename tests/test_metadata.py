from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from media_clips import make_all

from agent import metadata
from agent.metadata import (
    PROBE_BASE_SECONDS,
    FfprobeMissingError,
    MediaInfo,
    ProbeStopped,
    probe_media,
    probe_timeout,
)
from docking.simulated import truncate_clip, write_audio, write_clip, write_empty, write_stub

CREATED = "2026-11-22T00:30:15.000000Z"
PLACE = "+31.2304+121.4737/"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Good and broken clips, made once by real ffmpeg for the whole module."""
    d = tmp_path_factory.mktemp("clips")
    good = write_clip(d / "good.MP4", seconds=2, creation_time=CREATED, location=PLACE)
    fast = write_clip(d / "fast.MP4", seconds=2, creation_time=CREATED, faststart=True)
    return {
        "good": good,
        "truncated": truncate_clip(good, d / "truncated.MP4"),
        "truncated_faststart": truncate_clip(fast, d / "truncated_fast.MP4"),
        "stub": write_stub(d / "stub.MP4"),
        "empty": write_empty(d / "empty.MP4"),
        "wav": write_audio(d / "voice.WAV", seconds=1),
    }


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The media test clips (tests/media_clips.py), made once for the module."""
    return make_all(tmp_path_factory.mktemp("media"))


def test_good_clip_reads_back_what_the_recorder_wrote(clips: dict[str, Path]) -> None:
    info = probe_media(clips["good"])
    assert info == MediaInfo(
        "ok",
        problem=None,
        kind="video",
        duration_ms=2000,
        codec="h264",
        audio_codec="aac",
        width=320,
        height=240,
        frame_rate="15/1",
        creation_time=CREATED,
        start=CREATED,
        end="2026-11-22T00:30:17.000000Z",
        location=PLACE,
        location_source="tag",
        container="mov,mp4,m4a,3gp,3g2,mj2",
    )
    assert info.readable


def test_leaf_body_has_the_ledger_keys_and_no_floats(media: dict[str, Path]) -> None:
    keys = set(MediaInfo("ok").as_leaf_body())
    assert {"integrity", "readable", "problem", "start", "end", "frame_rate", "track"} <= keys
    for name in ("utc", "gps_stream", "truncated_faststart", "stub", "photo"):
        body = probe_media(media[name]).as_leaf_body()
        assert set(body) == keys
        values = list(body.values()) + list((body["track"] or {}).values())
        assert all(v is None or type(v) in (int, str, bool, dict) for v in values), body
        json.dumps(body, allow_nan=False)


def test_truncated_clip_with_moov_at_the_end_is_unreadable(clips: dict[str, Path]) -> None:
    info = probe_media(clips["truncated"])
    assert not info.readable and info.integrity == "truncated"
    assert info.problem is not None
    assert info.problem.startswith("truncated: the file ends inside its 'mdat' box")
    assert info.problem.endswith(
        "(ffprobe cannot read it: moov atom not found; Invalid data found when processing input)"
    )
    assert info.duration_ms is None


def test_truncated_faststart_clip_is_caught_by_counting_packets(clips: dict[str, Path]) -> None:
    info = probe_media(clips["truncated_faststart"])
    # The index survived, so ffprobe alone would call this a complete 2 s clip.
    assert info.duration_ms == 2000 and info.codec == "h264"
    assert not info.readable and info.integrity == "truncated"
    assert info.problem is not None and info.problem.startswith("truncated: ")
    assert "of 30 video packets" in info.problem


def test_stub_with_no_streams_is_truncated(clips: dict[str, Path]) -> None:
    # ffprobe exits 0 with no stream; the boxes say why: the header was cut inside moov.
    assert clips["stub"].stat().st_size == 100
    info = probe_media(clips["stub"])
    assert not info.readable and info.integrity == "truncated"
    assert info.problem is not None
    assert info.problem.startswith("truncated: the file ends inside its 'moov' box (100 bytes")
    assert info.problem.endswith("(0 streams)")


def test_empty_and_missing_files_are_unreadable(clips: dict[str, Path], tmp_path: Path) -> None:
    assert probe_media(clips["empty"]) == MediaInfo("not_media", problem="empty file (0 bytes)")
    missing = probe_media(tmp_path / "gone.MP4")
    assert missing.integrity == "not_media" and "No such file" in (missing.problem or "")


def test_audio_only_recording_has_no_video_codec(clips: dict[str, Path]) -> None:
    info = probe_media(clips["wav"])
    assert info.readable and info.codec is None and info.audio_codec == "pcm_s16le"
    assert info.integrity == "ok" and info.kind == "audio" and info.frame_rate is None
    assert info.duration_ms == 1000


def test_problem_text_is_the_same_on_every_run(clips: dict[str, Path], tmp_path: Path) -> None:
    # ffprobe prefixes messages with a pointer address and the path: neither may reach
    # the ledger, or the same broken clip would read differently on each probe.
    elsewhere = shutil.copy(clips["truncated"], tmp_path / "copy.MP4")
    assert probe_media(clips["truncated"]).problem == probe_media(Path(elsewhere)).problem


@pytest.mark.parametrize(
    "name",
    [b"-i evil.MP4", b"concat:a|b.MP4", "执法 记录.MP4".encode(), b"bad\xff\xfe.MP4"],
)
def test_hostile_names_are_probed_as_plain_files(
    clips: dict[str, Path], tmp_path: Path, name: bytes
) -> None:
    target = os.path.join(os.fsencode(tmp_path), name)
    shutil.copyfile(clips["good"], target)
    info = probe_media(Path(os.fsdecode(target)))
    assert info.readable and info.creation_time == CREATED


def test_missing_ffprobe_says_to_install_ffmpeg(
    clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no ffprobe on it
    with pytest.raises(FfprobeMissingError, match="install ffmpeg"):
        probe_media(clips["good"])


def _hanging_ffprobe(tmp_path: Path) -> str:
    """An ffprobe that never answers, as ffprobe does on some hostile clips."""
    script = tmp_path / "ffprobe"
    script.write_text("#!/bin/sh\nexec sleep 60\n")
    script.chmod(0o755)
    return str(script)


def test_a_probe_that_does_not_finish_is_killed_and_recorded(
    clips: dict[str, Path], tmp_path: Path
) -> None:
    started = time.monotonic()
    info = probe_media(clips["good"], timeout=0.5, ffprobe=_hanging_ffprobe(tmp_path))
    assert time.monotonic() - started < 30  # not the 60 s the child would take
    assert info.readable is False and info.integrity == "undecodable"
    assert info.problem == "ffprobe did not finish within 0.5 s (killed): not fully read"


def test_the_deadline_grows_with_the_clip(clips: dict[str, Path]) -> None:
    assert probe_timeout(0) == PROBE_BASE_SECONDS
    assert probe_timeout(4 * 1024**3) > probe_timeout(1024**3) > PROBE_BASE_SECONDS
    # A real probe of a good clip finishes well inside its deadline.
    assert probe_media(clips["good"], timeout=probe_timeout(clips["good"].stat().st_size)).readable


def test_a_stop_cuts_a_probe_short(
    clips: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metadata, "PROBE_STOP_GRACE_SECONDS", 0.2)
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    try:
        with pytest.raises(ProbeStopped):
            probe_media(clips["good"], timeout=60, stop=stop, ffprobe=_hanging_ffprobe(tmp_path))
    finally:
        timer.join()
    # A probe that finishes in its grace time is a normal probe (the usual grace: under
    # load, ffprobe of even a short clip can take longer than the test's 0.2 s).
    monkeypatch.undo()
    assert probe_media(clips["good"], stop=stop).readable
