"""The keys folder and its one owner, ledger.Keyring: killed after any step of creating,
signing or rotating, or with a COMMIT that fails, the station signs again with the right
key, its note never runs ahead of the database, and verify finds no problem. The public
key is readable by an auditor; the private key by its owner alone."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledger_fixtures import REPO, STATION, Station, StepClock, make_station

from agent.database import open_station_db, transaction
from ledger import (
    Anchor,
    InconsistentCheckpointError,
    Keyring,
    Ledger,
    StationKeyError,
    origin_for,
    read_public_key,
    verify_station,
)
from ledger.anchor import latest_checkpoint, make_checkpoint
from ledger.checkpoint import Checkpoint, SignedNote, open_checkpoint

STEPS = Path(__file__).with_name("keyring_steps.py")
SIGN_STEPS = ["note.staged", "sign.committed", "note.promoted"]
FIRST_SIGN_STEPS = ["key.created", *SIGN_STEPS]
ROTATE_STEPS = [
    "rotate.pending-key-saved",
    "note.staged",
    "rotate.committed",
    "note.promoted",
    "rotate.retired-public-saved",
    "rotate.private-installed",
    "rotate.public-installed",
    "rotate.pending-removed",
]


def ring_of(data: Path) -> Keyring:
    return Keyring(data / "keys", origin_for(STATION))


def run_steps(data: Path, operation: str, stop: str = "-") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(STEPS), str(data), operation, stop],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def killed_after(data: Path, operation: str, step: str) -> None:
    child = run_steps(data, operation, step)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    assert child.stdout.split()[-1] == step


def accessed(led: Ledger, who: str = "auditor") -> None:
    led.append(
        "clip.accessed",
        {"clip_id": "c1", "who": who, "purpose": "p", "action": "view", "via": "cli"},
    )


def note_size(note: str) -> int:
    return Checkpoint.parse_body(SignedNote.parse(note).body).size


def assert_note_not_ahead(data: Path) -> None:
    """The note beside the key names a checkpoint the database holds (or none)."""
    note = ring_of(data).last_signed()
    if note is None:
        return
    conn = open_station_db(data / "station.db")
    held = conn.execute("SELECT 1 FROM ledger_checkpoints WHERE note = ?", (note,)).fetchone()
    conn.close()
    assert held is not None, f"the note of size {note_size(note)} is not in the database"


def verify(data: Path, anchors: list[Anchor], pem: Path | None = None) -> list[str]:
    key = read_public_key(pem or data / "keys" / "station.pub.pem")
    conn = open_station_db(data / "station.db")
    try:
        report = verify_station(conn, key, anchors)
    finally:
        conn.close()
    return report.problems


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def station(tmp_path: Path) -> Station:
    """Three checkpoints, then one signed through the keyring, so a note is beside the key."""
    station = make_station(tmp_path)
    led = station.ledger()
    station.anchors.append(ring_of(station.data).sign(led))
    led.conn.close()
    return station


def fresh_station(root: Path) -> Path:
    """A data dir with leaves and no key: the station has never signed."""
    data = root / "data"
    data.mkdir()
    conn = open_station_db(data / "station.db")
    Ledger(conn, STATION, clock=StepClock()).append(
        "station.booted", {"version": "0.1.0", "config_sha256": "0" * 64}
    )
    conn.close()
    return data


# --- every step that can be died after is one this file kills ---------------------------


@pytest.mark.parametrize(("operation", "steps"), [("sign", SIGN_STEPS), ("rotate", ROTATE_STEPS)])
def test_the_steps_killed_below_are_every_step_taken(
    station: Station, operation: str, steps: list[str]
) -> None:
    child = run_steps(station.data, operation)
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == steps


def test_the_first_signature_makes_the_key_in_these_steps(tmp_path: Path) -> None:
    child = run_steps(fresh_station(tmp_path), "sign")
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == FIRST_SIGN_STEPS


# --- killed while signing -----------------------------------------------------------------


@pytest.mark.parametrize("step", SIGN_STEPS)
def test_killed_after_any_step_of_signing_the_station_signs_again(
    station: Station, step: str
) -> None:
    ring = ring_of(station.data)
    killed_after(station.data, "sign", step)
    assert_note_not_ahead(station.data)

    led = station.ledger()
    key = ring.open(led)
    assert key.verifier == station.key.verifier
    latest = latest_checkpoint(led.conn)
    assert latest is not None
    assert latest.size == (16 if step != "note.staged" else 15)
    assert ring.last_signed() == latest.note
    assert not ring.note.pending.exists()
    accessed(led)
    anchor = ring.sign(led)
    led.conn.close()
    assert anchor.checkpoint.size == 17
    open_checkpoint(anchor.note, [station.key.verifier])
    assert ring.last_signed() == anchor.note
    assert verify(station.data, [*station.anchors, anchor]) == []


@pytest.mark.parametrize("step", FIRST_SIGN_STEPS)
def test_killed_while_the_first_signature_makes_the_key(tmp_path: Path, step: str) -> None:
    data = fresh_station(tmp_path)
    killed_after(data, "sign", step)
    assert_note_not_ahead(data)
    ring = ring_of(data)
    led = Ledger(open_station_db(data / "station.db"), STATION, clock=StepClock())
    key = ring.open(led)
    # The public key is written even when the process died right after the private one.
    assert read_public_key(ring.public_path).public == key.verifier.public
    anchor = ring.sign(led)
    led.conn.close()
    open_checkpoint(anchor.note, [key.verifier])
    assert verify(data, [anchor]) == []


def test_processes_making_the_first_checkpoint_at_once_make_one_key(tmp_path: Path) -> None:
    data = fresh_station(tmp_path)
    children = [
        subprocess.Popen(
            [sys.executable, str(STEPS), str(data), "sign", "-"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err.decode()
    ring = ring_of(data)
    conn = open_station_db(data / "station.db")
    notes = [str(r[0]) for r in conn.execute("SELECT note FROM ledger_checkpoints")]
    conn.close()
    assert notes
    for note in notes:
        open_checkpoint(note, [ring.verifier()])
    assert ring.last_signed() == max(notes, key=note_size)
    assert not list((data / "keys").glob("*.tmp"))


# --- killed while rotating ----------------------------------------------------------------


@pytest.mark.parametrize("step", ROTATE_STEPS)
def test_killed_after_any_step_of_rotating_the_station_signs_with_the_right_key(
    station: Station, step: str
) -> None:
    ring = ring_of(station.data)
    old_pem = ring.public_path.read_bytes()
    killed_after(station.data, "rotate", step)
    assert_note_not_ahead(station.data)
    committed = ROTATE_STEPS.index(step) >= ROTATE_STEPS.index("rotate.committed")

    led = station.ledger()
    key = ring.open(led)
    rotations = led.leaves_of_kind("key.rotated")
    assert not (station.data / "keys" / "pending").exists()
    assert not ring.note.pending.exists()
    assert ring.verifier() == key.verifier
    if committed:
        assert [r.body["new_key"] for r in rotations] == [key.verifier.text()]
        assert key.verifier != station.key.verifier
        retired = station.data / "keys" / f"station.{station.key.verifier.hash.hex()}.pub.pem"
        assert retired.read_bytes() == old_pem
    else:
        assert rotations == []
        assert key.verifier == station.key.verifier

    accessed(led)
    anchor = ring.sign(led)
    led.conn.close()
    note = SignedNote.parse(anchor.note)
    assert note.verified_by([key.verifier]) == [key.verifier]
    if committed:  # the retired key signs nothing after its rotation
        assert note.verified_by([station.key.verifier]) == []
    anchors = [*station.anchors, anchor]
    old = station.data / "old.pub.pem"
    old.write_bytes(old_pem)
    assert verify(station.data, anchors, old) == []
    assert verify(station.data, anchors) == []


def test_a_keys_folder_restored_to_the_retired_key_is_refused(station: Station) -> None:
    keys = station.data / "keys"
    saved = keys.parent / "keys-backup"
    shutil.copytree(keys, saved)
    led = station.ledger()
    ring_of(station.data).rotate(led)
    shutil.rmtree(keys)
    shutil.copytree(saved, keys)
    accessed(led)
    with pytest.raises(StationKeyError, match="a retired key signs nothing"):
        ring_of(station.data).sign(led)
    led.conn.close()


def test_a_lost_key_is_not_silently_replaced(station: Station) -> None:
    (station.data / "keys" / "station.ed25519").unlink()
    led = station.ledger()
    with pytest.raises(StationKeyError, match="restore the keys folder"):
        ring_of(station.data).open(led)
    led.conn.close()


# --- the note still stops a database restored from an older backup -----------------------


def restore(station: Station, backup: Path) -> None:
    shutil.copy(backup, station.db)
    for suffix in ("-wal", "-shm"):
        Path(f"{station.db}{suffix}").unlink(missing_ok=True)


def test_a_database_restored_from_an_older_backup_is_refused(
    station: Station, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.db"
    shutil.copy(station.db, backup)
    led = station.ledger()
    accessed(led)
    ring_of(station.data).sign(led)
    led.conn.close()
    restore(station, backup)
    led = station.ledger()
    with pytest.raises(InconsistentCheckpointError, match="restored from an older backup"):
        ring_of(station.data).sign(led)
    accessed(led, "someone else")
    accessed(led, "someone else")
    with pytest.raises(InconsistentCheckpointError, match="history was rewritten"):
        ring_of(station.data).sign(led)
    led.conn.close()


def test_after_a_crash_past_the_commit_a_restored_backup_is_still_refused(
    station: Station, tmp_path: Path
) -> None:
    backup = tmp_path / "backup.db"
    shutil.copy(station.db, backup)
    killed_after(station.data, "sign", "sign.committed")
    led = station.ledger()
    ring_of(station.data).open(led)
    led.conn.close()
    restore(station, backup)
    led = station.ledger()
    accessed(led, "someone else")
    accessed(led, "someone else")
    with pytest.raises(InconsistentCheckpointError):
        ring_of(station.data).sign(led)
    led.conn.close()


# --- a COMMIT that fails ------------------------------------------------------------------


def failing_commits(db: Path) -> None:
    """Every checkpoint inserted breaks a deferred foreign key: SQLite refuses the COMMIT."""
    conn = sqlite3.connect(db)
    conn.executescript(
        """
        CREATE TABLE test_parent (id INTEGER PRIMARY KEY);
        CREATE TABLE test_child (
            parent INTEGER REFERENCES test_parent (id) DEFERRABLE INITIALLY DEFERRED
        );
        CREATE TRIGGER test_refuse_commit AFTER INSERT ON ledger_checkpoints
        BEGIN INSERT INTO test_child VALUES (42); END;
        """
    )
    conn.close()


@pytest.fixture
def refusing(station: Station) -> Iterator[Ledger]:
    failing_commits(station.db)
    led = station.ledger()
    accessed(led)
    yield led
    led.conn.close()


@pytest.mark.parametrize(
    "via", ["keyring", "make_checkpoint", "caller's transaction", "two in a caller's transaction"]
)
def test_a_failed_commit_leaves_no_note_ahead_of_the_database(
    station: Station, refusing: Ledger, via: str
) -> None:
    led = refusing
    ring = ring_of(station.data)
    before = ring.last_signed()
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        if via == "keyring":
            ring.sign(led)
        elif via == "make_checkpoint":
            make_checkpoint(led, [station.key], last_signed_file=ring.note.path)
        elif via == "caller's transaction":
            with transaction(led.conn):
                accessed(led)
                make_checkpoint(led, [station.key], last_signed_file=ring.note.path)
        else:
            # The second signer must not take the first one's uncommitted note for committed.
            with transaction(led.conn):
                make_checkpoint(led, [station.key], last_signed_file=ring.note.path)
                accessed(led)
                ring.sign(led)
    if led.conn.in_transaction:  # agent.database.transaction leaves it to its caller
        led.conn.execute("ROLLBACK")
    assert not led.conn.in_transaction
    assert ring.last_signed() == before
    assert_note_not_ahead(station.data)

    led.conn.execute("DROP TRIGGER test_refuse_commit")
    ring.open(led)
    assert not ring.note.pending.exists()
    assert ring.last_signed() == before
    anchor = ring.sign(led)
    assert ring.last_signed() == anchor.note
    assert verify(station.data, [*station.anchors, anchor]) == []


# --- who may read what --------------------------------------------------------------------


def test_the_folder_and_public_files_are_readable_the_private_key_private(
    tmp_path: Path,
) -> None:
    data = fresh_station(tmp_path)
    ring = ring_of(data)
    led = Ledger(open_station_db(data / "station.db"), STATION, clock=StepClock())
    ring.sign(led)
    old = ring.verifier()
    ring.rotate(led)
    led.conn.close()
    keys = data / "keys"
    assert mode(keys) == 0o755
    assert mode(keys / "station.ed25519") == 0o600
    assert mode(keys / "station.pub.pem") == 0o644
    assert mode(keys / "last-checkpoint") == 0o644
    assert mode(keys / f"station.{old.hash.hex()}.pub.pem") == 0o644
    assert sorted(p.name for p in keys.iterdir()) == sorted(
        [
            "station.ed25519",
            "station.pub.pem",
            "last-checkpoint",
            f"station.{old.hash.hex()}.pub.pem",
        ]
    )


def test_a_0700_keys_folder_is_opened_up_on_the_next_write_open(station: Station) -> None:
    keys = station.data / "keys"
    os.chmod(keys, 0o700)
    os.chmod(keys / "station.pub.pem", 0o600)
    os.chmod(keys / "station.ed25519", 0o644)
    led = station.ledger()
    ring_of(station.data).open(led)
    led.conn.close()
    assert mode(keys) == 0o755
    assert mode(keys / "station.pub.pem") == 0o644
    assert mode(keys / "station.ed25519") == 0o600


def test_an_auditor_who_is_not_root_reads_the_public_key_not_the_private(
    tmp_path: Path,
) -> None:
    # pytest's own temporary folders are 0700: the station lives where others may look.
    root = Path(tempfile.mkdtemp(prefix="evidock-auditor-"))
    try:
        os.chmod(root, 0o755)
        data = fresh_station(root)
        os.chmod(data, 0o755)
        ring = ring_of(data)
        led = Ledger(open_station_db(data / "station.db"), STATION, clock=StepClock())
        ring.sign(led)
        led.conn.close()
        if os.geteuid() != 0:
            assert os.access(ring.public_path, os.R_OK)
            assert mode(ring.public_path) & stat.S_IROTH and mode(ring.keys_dir) & stat.S_IXOTH
            return
        cat = shutil.which("cat")
        assert cat is not None
        public = subprocess.run(
            [cat, str(ring.public_path)], capture_output=True, user="nobody", timeout=30
        )
        assert public.returncode == 0, public.stderr
        assert public.stdout == ring.public_path.read_bytes()
        private = subprocess.run(
            [cat, str(ring.private_path)], capture_output=True, user="nobody", timeout=30
        )
        assert private.returncode != 0 and b"Permission denied" in private.stderr
    finally:
        shutil.rmtree(root)


def test_the_fingerprint_is_sha256_of_the_raw_key_as_openssl_gives_it(station: Station) -> None:
    ring = ring_of(station.data)
    raw = station.key.verifier.public
    assert ring.fingerprint().replace(" ", "") == hashlib.sha256(raw).hexdigest()
    assert [len(group) for group in ring.fingerprint().split(" ")] == [4] * 16
    assert ring.verifier_text() == station.key.verifier.text()
    if shutil.which("openssl") is None:
        return
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-in", str(ring.public_path), "-outform", "DER"],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    assert hashlib.sha256(der[-32:]).hexdigest() == ring.fingerprint().replace(" ", "")


def test_leftovers_of_dead_writers_are_swept(station: Station) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    keys = station.data / "keys"
    stale = keys / f"station.ed25519.{gone.pid}.1.tmp"
    stale.write_bytes(b"half a key")
    mine = keys / f"last-checkpoint.{os.getpid()}.1.tmp"
    mine.write_bytes(b"")
    led = station.ledger()
    ring_of(station.data).open(led)
    led.conn.close()
    assert not stale.exists() and mine.exists()
    mine.unlink()


def test_rotating_inside_an_open_transaction_is_refused(station: Station) -> None:
    from ledger.errors import LedgerStateError

    led = station.ledger()
    with (
        pytest.raises(LedgerStateError, match="outside any open transaction"),
        transaction(led.conn),
    ):
        ring_of(station.data).rotate(led)
    led.conn.close()


def test_the_station_rotates_its_key_and_publishes_the_checkpoint_both_signed(
    tmp_path: Path,
) -> None:
    from agent.anchoring import publish_checkpoint, rotate_station_key, station_key
    from agent.delivery import delivery_target
    from agent.station import Station as AgentStation
    from agent.station import embedded_config

    station = AgentStation.open(embedded_config(tmp_path / "data"))
    station.ledger().append("station.booted", {"version": "0.1.0", "config_sha256": "0" * 64})
    first = publish_checkpoint(station, station.conn, delivery_target(station))
    old = station_key(station)
    old_text, new_text, published = rotate_station_key(station)
    assert old_text == old.verifier.text() and new_text != old_text
    assert station_key(station).verifier.text() == new_text
    anchor = Anchor.parse(Path(published).read_text("utf-8"))
    note = SignedNote.parse(anchor.note)
    assert len(note.verified_by([old.verifier, station_key(station).verifier])) == 2
    assert first is not None
    problems = verify(station.data_dir, [first, anchor])
    station.close()
    assert problems == []
