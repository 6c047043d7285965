from __future__ import annotations

import re

import pytest

from docking import ProfileError, get_profile, load_profiles, profile_for_usb
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
