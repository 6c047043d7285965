from __future__ import annotations

import re

import pytest

from docking import (
    ProfileError,
    RecorderProfile,
    WipePolicy,
    get_profile,
    load_profiles,
    profile_for_usb,
)
from docking.profile_fields import DeviceInfoClock, NewestFileClock
from docking.profiles import parse_profiles, profile_for_model

GENERIC = get_profile("generic")


def test_generic_profile_is_shipped_with_example_usb_ids_only() -> None:
    assert "generic" in load_profiles()
    assert GENERIC.usb, "the generic profile shows the shape of a USB entry"
    assert all(usb.example for usb in GENERIC.usb)
    # Example ids are never taken for a real device.
    usb = GENERIC.usb[0]
    assert profile_for_usb(usb.vendor_id, usb.product_id) is None


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("20261122_083015_0001.MP4", "video"),
        ("x.mov", "video"),
        ("a.WAV", "audio"),
        ("p.Jpg", "photo"),
        ("20261122_083015_0001.NMEA", "sidecar"),
        ("README", "other"),
        ("archive.zip", "other"),
    ],
)
def test_kind_comes_from_the_extension_ignoring_case(name: str, kind: str) -> None:
    assert GENERIC.kind_of(name) == kind


def test_recorder_time_is_naive_iso_from_the_file_name() -> None:
    assert GENERIC.recorder_time("20261122_083015_0001.MP4") == "2026-11-22T08:30:15"
    assert GENERIC.recorder_time("IMG_0001.MP4") is None
    # A name that only looks like a time (month 13) is not a time.
    assert GENERIC.recorder_time("20261322_083015_0001.MP4") is None
    dashed = get_profile("record-dashed")
    assert dashed.recorder_time("REC-2026-11-22-08-30-15.AVI") == "2026-11-22T08:30:15"


def test_footage_globs_span_folders_and_ignore_case() -> None:
    matcher = GENERIC.footage_matcher()
    assert matcher.match("DCIM/100MEDIA/a.MP4")
    assert matcher.match("dcim/100media/deep/er/a.mp4")
    assert matcher.match("RECORD/a.WAV")
    assert not matcher.match("MISC/DEVICE.TXT")
    assert not matcher.match("XDCIM/a.MP4")


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"unknown recorder profile 'nope'.*generic"):
        get_profile("nope")


def test_model_from_device_info_selects_a_profile() -> None:
    dashed = get_profile("record-dashed")
    assert profile_for_model("evidock-sim", dashed) is GENERIC
    assert profile_for_model("SOMETHING-ELSE", dashed) is dashed
    assert profile_for_model(None, dashed) is dashed


def _table(**changes: object) -> str:
    base = {
        "model": '"m"',
        "footage": '["DCIM/**"]',
        "video": '["mp4"]',
        "audio": "[]",
        "photo": "[]",
        "sidecar": "[]",
        "device_info": '["DEVICE.INF"]',
        "device_info_separator": '"="',
        "serial_key": '"serial"',
        "model_key": '"model"',
        "firmware_key": '"firmware"',
        "officer_key": '"officer"',
        "time_pattern": "'^(\\d{8}_\\d{6})'",
        "time_format": '"%Y%m%d_%H%M%S"',
    }
    base.update({k: str(v) for k, v in changes.items()})
    return "[profiles.x]\n" + "\n".join(f"{k} = {v}" for k, v in base.items())


def test_a_valid_profile_table_parses() -> None:
    profile = parse_profiles(_table())["x"]
    assert profile.name == "x"
    assert profile.recorder_time("20261122_083015.MP4") == "2026-11-22T08:30:15"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": '"red"'}, "profiles.x.colour"),
        ({"time_pattern": "'('"}, "profiles.x.time_pattern"),
        ({"time_pattern": "'^\\d+'"}, "needs one group"),
        ({"footage": "[]"}, "profiles.x.footage"),
        ({"usb": "[{ vendor_id = 70000, product_id = 1 }]"}, "profiles.x.usb"),
    ],
)
def test_bad_profile_keys_are_named(change: dict[str, str], message: str) -> None:
    with pytest.raises(ProfileError, match=re.escape(message)):
        parse_profiles(_table(**change))


def test_profiles_file_that_is_not_toml_is_a_clear_error() -> None:
    with pytest.raises(ProfileError, match="not valid TOML"):
        parse_profiles("[profiles.x")
    with pytest.raises(ProfileError, match=r"at least one \[profiles.NAME\]"):
        parse_profiles("")


# --- important marks, wipe, sidecars, clock, layout -----------------------------------------


def test_important_marks_are_searched_in_the_path_ignoring_case() -> None:
    assert GENERIC.is_important("DCIM/100MEDIA/20261122_083015_0001_IMP.MP4")
    assert GENERIC.is_important(b"DCIM/100MEDIA/!20261122_083015_0001.mp4")
    assert GENERIC.is_important("dcim/20261122_083015_0001_imp.mp4")
    assert not GENERIC.is_important("DCIM/100MEDIA/20261122_083015_0001.MP4")
    assert not GENERIC.is_important("DCIM/IMPORT/a!b_IMPx.MP4")
    # A name that is not UTF-8 is still looked at, never an error.
    assert GENERIC.is_important(b"DCIM/\xff\xfe_IMP.MP4")
    event = get_profile("video-gps-log")
    assert event.is_important("VIDEO/EVENT/20261122-083015-0001.MP4")
    assert not event.is_important("VIDEO/20261122-083015-0001.MP4")


@pytest.mark.parametrize(
    ("station", "profile", "applies"),
    [
        ("after_verified", None, "after_verified"),
        ("after_central_confirmed", None, "after_central_confirmed"),
        ("after_verified", "after_central_confirmed", "after_central_confirmed"),
        ("after_verified", "never", "never"),
        ("after_central_confirmed", "never", "never"),
        # a profile can never loosen the station's policy
        ("after_central_confirmed", "after_verified", "after_central_confirmed"),
        ("never", "after_verified", "never"),
        ("never", "after_central_confirmed", "never"),
    ],
)
def test_a_profile_can_only_make_the_wipe_stricter(
    station: WipePolicy, profile: WipePolicy | None, applies: WipePolicy
) -> None:
    table = _table() + (f'\nwipe = "{profile}"' if profile else "")
    assert parse_profiles(table)["x"].wipe_policy(station) == applies


def _pairs(profile: RecorderProfile, *paths: bytes) -> dict[bytes, bytes]:
    return profile.pair_sidecars(paths)


def test_sidecars_pair_by_stem_in_their_own_folder_first() -> None:
    pairs = _pairs(
        GENERIC,
        b"DCIM/A/20261122_083015_0001.MP4",
        b"DCIM/A/20261122_083015_0001.nmea",  # case differs from the clip's extension
        b"DCIM/A/20261122_083015_0001.JPG",  # a photo with the same stem: video preferred
        b"DCIM/B/20261122_083015_0001.MP4",
        b"DCIM/B/20261122_083015_0001.NMEA",
        b"DCIM/C/20261122_083015_0001.NMEA",  # no clip in its folder: same-folder rule
        b"DCIM/A/LONELY.LOG",
    )
    assert pairs == {
        b"DCIM/A/20261122_083015_0001.nmea": b"DCIM/A/20261122_083015_0001.MP4",
        b"DCIM/B/20261122_083015_0001.NMEA": b"DCIM/B/20261122_083015_0001.MP4",
    }


def test_sidecars_in_their_own_folders_pair_by_stem_unless_ambiguous() -> None:
    folders = get_profile("video-gps-log")
    assert folders.sidecar_of == "stem"
    pairs = _pairs(
        folders,
        b"VIDEO/20261122-083015-0001.MP4",
        b"GPS/20261122-083015-0001.NMEA",
        b"LOG/20261122-083015-0001.log",
        b"VIDEO/A/20261122-083021-0002.MP4",
        b"VIDEO/B/20261122-083021-0002.MP4",
        b"GPS/20261122-083021-0002.NMEA",  # two clips of that stem elsewhere: not guessed
        b"GPS/\xff.NMEA",
        b"VIDEO/\xff.MP4",
    )
    assert pairs == {
        b"GPS/20261122-083015-0001.NMEA": b"VIDEO/20261122-083015-0001.MP4",
        b"LOG/20261122-083015-0001.log": b"VIDEO/20261122-083015-0001.MP4",
        b"GPS/\xff.NMEA": b"VIDEO/\xff.MP4",
    }
    none = parse_profiles(_table(sidecar='["nmea"]', sidecar_of='"none"'))["x"]
    assert _pairs(none, b"DCIM/a.MP4", b"DCIM/a.NMEA") == {}


def test_the_clock_rule_takes_a_table_or_a_method_name() -> None:
    assert parse_profiles(_table())["x"].clock.method == "none"
    assert parse_profiles(_table(clock='"newest-file"'))["x"].clock == NewestFileClock(
        method="newest-file", max_file_seconds=3600
    )
    rule = '{ method = "device-info", key = "Clock", format = "%Y/%m/%d %H:%M:%S" }'
    assert parse_profiles(_table(clock=rule))["x"].clock == DeviceInfoClock(
        method="device-info", key="Clock", format="%Y/%m/%d %H:%M:%S"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"clock": '"sundial"'}, "profiles.x.clock"),
        ({"clock": '{ method = "device-info", format = "%Y%m%d%H%M%S" }'}, "clock.device-info.key"),
        ({"clock": '{ method = "device-info", key = "c", format = "%H:%M" }'}, "to the second"),
        ({"clock": '{ method = "newest-file", max_file_seconds = -1 }'}, "max_file_seconds"),
        ({"time_format": '"%Y%m%d"'}, "profiles.x.time_format"),
        ({"important": "['(']"}, "profiles.x.important"),
        ({"wipe": '"sometimes"'}, "profiles.x.wipe"),
        ({"sidecar_of": '"nearby"'}, "profiles.x.sidecar_of"),
        ({"clock_sync_file": '{ path = "../TIME.TXT", format = "%Y%m%d%H%M%S" }'}, "path"),
        ({"clock_sync_file": '{ path = "/TIME.TXT", format = "%Y%m%d%H%M%S" }'}, "path"),
        ({"clock_sync_file": '{ path = "A//T.TXT", format = "%Y%m%d%H%M%S" }'}, "path"),
        ({"clock_sync_file": '{ path = "T.TXT", format = "%H" }'}, "clock_sync_file.format"),
    ],
)
def test_bad_new_keys_are_named(change: dict[str, str], message: str) -> None:
    with pytest.raises(ProfileError, match=re.escape(message)):
        parse_profiles(_table(**change))


def _layout(video: str, **more: str) -> str:
    rest = "".join(f", {k} = {v}" for k, v in more.items())
    return f"{{ video = {video!r}{rest} }}"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"layout": _layout("DCIM/{time:%Y%m%d_%H%M%S}_{colour}.MP4")}, "cannot be filled"),
        ({"layout": _layout("DCIM/{time:%Y%m%d}.MP4")}, "do not read the time"),
        ({"layout": _layout("DCIM/{time:%Y%m%d_%H%M%S}.AVI")}, "not a video file"),
        ({"layout": _layout("VIDEO/{time:%Y%m%d_%H%M%S}.MP4")}, "outside the footage globs"),
        ({"layout": _layout("../{time:%Y%m%d_%H%M%S}.MP4")}, "relative path"),
        (
            {"important": "['_IMP']", "layout": _layout("DCIM/{time:%Y%m%d_%H%M%S}{mark}.MP4")},
            "is not marked important",  # the layout's mark is empty
        ),
        (
            {"layout": _layout("DCIM/{time:%Y%m%d_%H%M%S}.MP4", sidecars="['{folder}/{stem}.X']")},
            "is not a sidecar",
        ),
    ],
)
def test_a_layout_the_profile_cannot_read_back_is_refused(
    changes: dict[str, str], message: str
) -> None:
    with pytest.raises(
        ProfileError, match=r"profiles\.x: .*layout\.video: .*" + re.escape(message)
    ):
        parse_profiles(_table(**changes))


def test_usb_ids_match_only_a_real_entry_of_the_table_given() -> None:
    table = _table(usb="[{ vendor_id = 0x1234, product_id = 0x5678 }]")
    profiles = parse_profiles(table)
    assert profile_for_usb(0x1234, 0x5678, profiles=profiles) is profiles["x"]
    assert profile_for_usb(0x1234, 0x5679, profiles=profiles) is None
    assert profile_for_usb(0x1234, 0x5678) is None  # not a shipped recorder
