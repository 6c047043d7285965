"""S3 user metadata is ASCII header text: every value is UTF-8 percent-encoded (Chinese
names and case numbers come back whole with ``urllib.parse.unquote``), lists are items
joined by ",", and what does not fit S3's 2 KB is named in ``omitted``."""

from __future__ import annotations

from urllib.parse import unquote

from hypothesis import given
from hypothesis import strategies as st

from uploader.s3_client import METADATA_BUDGET, encode_value, object_metadata


@given(st.text())
def test_any_text_comes_back_whole_and_travels_as_plain_ascii(text: str) -> None:
    encoded = encode_value(text)
    assert unquote(encoded, errors="strict") == text
    assert all(0x21 <= ord(ch) < 0x7F for ch in encoded)
    assert "," not in encoded


@given(st.lists(st.text(), min_size=1))
def test_a_list_splits_back_into_its_items(items: list[str]) -> None:
    assert [unquote(part) for part in encode_value(items).split(",")] == items


def test_names_are_header_names_and_steering_keys_stay_out() -> None:
    meta = {"capture_time": "2026-11-22T08:30:15Z", "legal_hold": True, "collector": "张三"}
    assert object_metadata(meta, frozenset({"legal_hold"})) == {
        "capture-time": "2026-11-22T08:30:15Z",
        "collector": "%E5%BC%A0%E4%B8%89",
    }


def test_what_does_not_fit_is_named_and_the_clips_identity_always_goes() -> None:
    sha = "a" * 64
    many = [f"朝执罚〔2026〕{n}号" for n in range(40)]
    meta = {"sha256": sha, "station": "bj-cy-02", "case_numbers": many, "kind": "video"}
    stored = object_metadata(meta, frozenset())
    assert stored["sha256"] == sha and stored["kind"] == "video"
    assert stored["omitted"] == "case-numbers"
    assert sum(len(k) + len(v) for k, v in stored.items()) <= METADATA_BUDGET + 40
