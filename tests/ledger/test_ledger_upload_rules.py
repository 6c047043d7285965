"""A clip.uploaded leaf from an S3 target carries the object's ETag, version and Object
Lock; both verifiers check their types when they are there (a folder target's leaf has
none of them)."""

from __future__ import annotations

from ledger.rules import body_problem

FOLDER_BODY = {
    "clip_id": "c1",
    "sha256": "a" * 64,
    "target": "folder",
    "location": "/central/clips/aa/" + "a" * 64,
    "confirmed_size": 10,
    "confirmed_sha256": "a" * 64,
}
S3_KEYS = {
    "etag": '"0123-2"',
    "version_id": "v1",
    "lock_mode": "COMPLIANCE",
    "lock_until": "2027-03-01T00:00:00Z",
    "legal_hold": False,
}


def test_a_folder_upload_and_an_s3_upload_pass() -> None:
    assert body_problem("clip.uploaded", FOLDER_BODY) is None
    assert body_problem("clip.uploaded", {**FOLDER_BODY, **S3_KEYS}) is None
    unlocked = {**S3_KEYS, "lock_mode": None, "lock_until": None, "version_id": None}
    assert body_problem("clip.uploaded", {**FOLDER_BODY, **unlocked}) is None


def test_s3_keys_of_the_wrong_type_are_found() -> None:
    for key, bad in (("legal_hold", "yes"), ("etag", 7), ("lock_until", 1767225600)):
        problem = body_problem("clip.uploaded", {**FOLDER_BODY, **S3_KEYS, key: bad})
        assert problem is not None and key in problem, (key, problem)


def test_a_purge_names_what_it_relied_on_with_the_right_types() -> None:
    body = {"clip_id": "c1", "sha256": "a" * 64, "reason": "retention over"}
    relied = {"uploads": [{"target": "folder", "leaf": 7}], "keep_until": "2027-03-01"}
    assert body_problem("clip.purged", body) is None
    assert body_problem("clip.purged", {**body, **relied}) is None
    for key, bad in (("uploads", "leaf 7"), ("keep_until", 20270301)):
        problem = body_problem("clip.purged", {**body, **relied, key: bad})
        assert problem is not None and key in problem, (key, problem)
