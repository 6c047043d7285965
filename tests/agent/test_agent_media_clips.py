"""Each kind of clip a recorder leaves gets its integrity class and fields, read by real
ffprobe from clips real ffmpeg made (tests/media_clips.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from media_clips import make_all, sidecar_nmea

from agent import media_times
from agent.media_places import nmea_track, parse_iso6709, sidecar_track
from agent.metadata import probe_media

SHANGHAI = "+31.230400+121.473700/"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_all(tmp_path_factory.mktemp("media"))


def test_creation_time_tagged_in_utc(media: dict[str, Path]) -> None:
    info = probe_media(media["utc"])
    assert info.integrity == "ok" and info.kind == "video"
    assert info.creation_time == "2026-11-22T00:30:15.000000Z"
    assert info.start == "2026-11-22T00:30:15.000000Z"
    assert info.end == "2026-11-22T00:30:17.000000Z"
    assert (info.width, info.height, info.frame_rate) == (160, 120, "15/1")
    assert (info.codec, info.audio_codec) == ("h264", "aac")


def test_creation_time_tagged_at_plus_eight_is_the_same_instant(media: dict[str, Path]) -> None:
    info = probe_media(media["plus8"])
    assert info.creation_time == "2026-11-22T08:30:15+0800"  # kept as the file spells it
    assert info.start == "2026-11-22T00:30:15.000000Z"
    assert info.end == "2026-11-22T00:30:17.000000Z"
    assert info.recorder_serial == "RX-0042"


def test_recorder_clock_offset_moves_start_and_end() -> None:
    # A recorder 90.5 s ahead of the station: its moments were 90.5 s earlier.
    assert media_times.corrected("2026-11-22T00:30:15.000000Z", 90_500) == (
        "2026-11-22T00:28:44.500000Z"
    )
    # A naive wall-clock tag stays naive; no zone is guessed.
    assert media_times.corrected("2026-11-22 08:30:15", -2000) == "2026-11-22T08:30:17.000000"
    assert media_times.corrected("2026-11-22T00:30:15Z", None) is None


def test_place_from_an_iso6709_tag(media: dict[str, Path]) -> None:
    info = probe_media(media["utc"])
    assert info.location == "+31.2304+121.4737/" and info.location_source == "tag"
    assert info.track is None


def test_place_from_an_nmea_subtitle_stream(media: dict[str, Path]) -> None:
    info = probe_media(media["gps_stream"])
    assert info.integrity == "ok"
    assert info.location == SHANGHAI and info.location_source == "nmea-stream"
    track = info.track
    assert track is not None and track.as_leaf_body() == {
        "source": "stream",
        "file": None,
        "points": 2,
        "first_fix": SHANGHAI,
        "first_fix_at": "2026-11-22T00:30:15.000000Z",
        "south_west": SHANGHAI,
        "north_east": SHANGHAI,
    }


def test_place_from_an_nmea_sidecar_skips_the_void_fix(media: dict[str, Path]) -> None:
    track = sidecar_track(media["sidecar"])
    assert track is not None and track.file == "FILE0001.NMEA" and track.points == 2
    info = probe_media(media["sidecar"], sidecar=track)
    assert info.location == SHANGHAI and info.location_source == "nmea-sidecar"
    # Without the sidecar the clip has no place.
    assert probe_media(media["sidecar"]).location is None


def test_a_lower_case_or_gps_sidecar_is_found_and_a_tag_wins(tmp_path: Path) -> None:
    clip = tmp_path / "REC0002.MP4"
    clip.write_bytes(b"")
    assert sidecar_track(clip) is None
    sidecar_nmea(clip, ".GPS")
    track = sidecar_track(clip)
    assert track is not None and track.file == "REC0002.GPS"


def test_nmea_checksums_and_hemispheres() -> None:
    good = b"$GPGGA,003015.00,3351.3280,S,15112.5580,E,1,08,0.9,10.0,M,0.0,M,,*"
    body = good[1:-1]
    total = 0
    for byte in body:
        total ^= byte
    track = nmea_track(good + f"{total:02X}".encode(), "stream")
    assert track is not None and track.location == "-33.855467+151.209300/"
    assert track.first.at is None  # GGA has no date
    assert nmea_track(good + b"00", "stream") is None  # bad checksum: no fix
    assert parse_iso6709("+31.2304+121.4737+012.3/") is not None
    assert parse_iso6709("+95.0000+121.4737/") is None


@pytest.mark.parametrize(
    ("name", "integrity", "start"),
    [
        ("truncated_faststart", "truncated", "truncated: 14 of 30 video packets can be read"),
        ("truncated_moov_at_end", "truncated", "truncated: the file ends inside its 'mdat' box"),
        ("stub", "truncated", "truncated: the file ends inside its 'moov' box (100 bytes"),
        ("text", "not_media", "not a media file: ffprobe cannot read it"),
    ],
)
def test_broken_files_get_their_class(
    media: dict[str, Path], name: str, integrity: str, start: str
) -> None:
    info = probe_media(media[name])
    assert info.integrity == integrity and not info.readable
    assert info.problem is not None and info.problem.startswith(start), info.problem


def test_audio_only_recording(media: dict[str, Path]) -> None:
    info = probe_media(media["audio"])
    assert (info.integrity, info.kind, info.codec, info.audio_codec) == (
        "ok",
        "audio",
        None,
        "pcm_s16le",
    )
    assert info.duration_ms == 1000


def test_a_jpeg_photo_is_a_sound_still_image(media: dict[str, Path]) -> None:
    info = probe_media(media["photo"])
    assert (info.integrity, info.kind, info.codec) == ("ok", "image", "mjpeg")
    assert (info.width, info.height) == (320, 240)
    assert info.duration_ms is None and info.frame_rate is None and info.problem is None


def test_a_live_playlist_that_makes_ffprobe_hang_is_killed_and_flagged(
    media: dict[str, Path],
) -> None:
    # A real ffprobe on a real 80-byte file that never ends: killed at its deadline.
    info = probe_media(media["hang"], timeout=1.0)
    assert info.integrity == "undecodable"
    assert info.problem == "ffprobe did not finish within 1 s (killed): not fully read"
    assert media["hang"].exists()  # kept


def test_full_decode_finds_damage_the_packet_count_does_not(media: dict[str, Path]) -> None:
    assert probe_media(media["damaged"]).integrity == "ok"
    info = probe_media(media["damaged"], decode=True)
    assert info.integrity == "undecodable"
    assert info.problem is not None and info.problem.startswith("full decode failed: ")
    assert probe_media(media["utc"], decode=True).integrity == "ok"
