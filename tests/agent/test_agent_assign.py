"""Officer assignment: recorder serial -> officer, with history, each change a ledger leaf
written with its row; CSV import all rows or none; the collector of a docking by
precedence (command line, assignment in force, device-info, none)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from station_cli import ingest_json, leaf_count, run_cli

from agent.assignments import (
    AssignmentError,
    assign,
    collector_for,
    history,
    import_csv,
    record_device_officer,
)
from agent.station import Station, station_config
from agent.station_args import sign
from ledger import Ledger


def _station(data: Path) -> Station:
    config, _ = station_config(data)
    return Station.open(config, data)


def _leaves(data: Path, kind: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(data / "station.db")
    try:
        rows = conn.execute("SELECT data FROM ledger_leaves WHERE kind = ? ORDER BY idx", (kind,))
        return [json.loads(bytes(row[0])) for row in rows]
    finally:
        conn.close()


@pytest.fixture
def docked(recorder: Path, tmp_path: Path) -> Path:
    """A station whose ledger holds one real ingest of REC0001 (device-info officer 000123)."""
    data = tmp_path / "data"
    ingest_json(recorder, data)
    return data


def test_history_across_two_assignments(docked: Path) -> None:
    run_cli(
        "assign", "REC0001", "警员001", "--from", "2026-11-01T08:00:00+08:00",
        "--by", "admin", "--data-dir", docked, check=0,
    )  # fmt: skip
    proc = run_cli(
        "assign", "REC0001", "警员002", "--from", "2026-11-20T08:00:00+08:00",
        "--by", "admin", "--data-dir", docked, "--json", check=0,
    )  # fmt: skip
    made = json.loads(proc.stdout)["assigned"]
    assert [a["officer"] for a in made] == ["警员002"]

    rows = history_of(docked)
    assert [(a["officer"], a["valid_from"], a["valid_to"]) for a in rows] == [
        ("警员001", "2026-11-01T00:00:00.000000Z", "2026-11-20T00:00:00.000000Z"),
        ("警员002", "2026-11-20T00:00:00.000000Z", None),
    ]
    assert {(a["set_by"], a["source"]) for a in rows} == {("admin", "cli")}

    leaves = [
        leaf for leaf in _leaves(docked, "officer.assigned") if leaf["body"]["source"] == "cli"
    ]
    assert [leaf["body"] for leaf in leaves] == [
        {
            "recorder": "REC0001",
            "officer": "警员001",
            "valid_from": "2026-11-01T00:00:00.000000Z",
            "set_by": "admin",
            "source": "cli",
            "previous": None,
        },
        {
            "recorder": "REC0001",
            "officer": "警员002",
            "valid_from": "2026-11-20T00:00:00.000000Z",
            "set_by": "admin",
            "source": "cli",
            "previous": "警员001",
        },
    ]
    # Each row names the leaf written in its transaction.
    assert [a["leaf_index"] for a in rows] == [leaf["index"] for leaf in leaves]

    text = run_cli("assign", "--list", "REC0001", "--data-dir", docked, check=0).stdout
    assert "警员001" in text and "2026-11-20 00:00:00Z" in text

    verify = run_cli("verify", "--data-dir", docked)
    assert verify.returncode == 0, verify.stdout


def test_the_same_officer_again_records_nothing(docked: Path) -> None:
    run_cli("assign", "REC0001", "000777", "--data-dir", docked, check=0)
    before = leaf_count(docked)
    proc = run_cli("assign", "REC0001", "000777", "--data-dir", docked, check=0)
    assert "already assigned" in proc.stdout
    assert leaf_count(docked) == before


def test_an_assignment_starting_before_the_current_one_is_refused(docked: Path) -> None:
    run_cli(
        "assign", "REC0001", "A1", "--from", "2026-11-20T00:00:00Z", "--data-dir", docked, check=0
    )
    before = leaf_count(docked)
    proc = run_cli(
        "assign", "REC0001", "A2", "--from", "2026-11-19T00:00:00Z", "--data-dir", docked, check=2
    )
    assert "start later" in proc.stderr and proc.stderr.count("\n") == 1
    assert leaf_count(docked) == before


CSV_GOOD = (
    "\ufeffserial,officer,valid_from\n"
    "REC0001,张三,2026-11-01T08:00:00+08:00\n"
    "\n"
    "REC0002,李四\n"
    "REC0001,王五,2026-11-21T08:00:00+08:00\n"
)


def test_csv_import_with_bom_header_and_chinese_names(docked: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "officers.csv"
    sheet.write_text(CSV_GOOD, "utf-8")
    proc = run_cli(
        "assign", "--import", sheet, "--by", "IT 李", "--data-dir", docked, "--json", check=0
    )
    made = json.loads(proc.stdout)["assigned"]
    assert [(a["recorder"], a["officer"], a["source"]) for a in made] == [
        ("REC0001", "张三", "csv"),
        ("REC0002", "李四", "csv"),
        ("REC0001", "王五", "csv"),
    ]
    assert {a["set_by"] for a in made} == {"IT 李"}
    rec1 = [a for a in history_of(docked) if a["recorder"] == "REC0001"]
    assert [a["valid_to"] for a in rec1] == ["2026-11-21T00:00:00.000000Z", None]

    # The same file again changes nothing: every row is already in force.
    before = leaf_count(docked)
    again = run_cli("assign", "--import", sheet, "--by", "IT", "--data-dir", docked, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["assigned"] == []
    assert leaf_count(docked) == before
    assert run_cli("verify", "--data-dir", docked).returncode == 0


def history_of(data: Path) -> list[dict[str, Any]]:
    """The people's assignments (ingest may also record what the recorder's device-info said)."""
    proc = run_cli("assign", "--list", "--data-dir", data, "--json", check=0)
    rows: list[dict[str, Any]] = json.loads(proc.stdout)["assignments"]
    return [row for row in rows if row["source"] != "device-info"]


def test_csv_import_is_all_or_nothing_and_names_every_bad_line(
    docked: Path, tmp_path: Path
) -> None:
    sheet = tmp_path / "officers.csv"
    sheet.write_text(
        "REC0001,张三\n"  # line 1: good
        "REC0002,\n"  # line 2: no officer
        "REC0003,赵六,tomorrow\n"  # line 3: not a time
        "REC0004,钱七,2026-11-22T08:00:00\n"  # line 4: no offset
        "REC0005,孙八\n"  # line 5: good
        "REC0006,a,b,c\n"  # line 6: four fields
        "REC\x1b[2J,周九\n",  # line 7: an escape in the serial
        "utf-8",
    )
    before = leaf_count(docked)
    proc = run_cli("assign", "--import", sheet, "--by", "IT", "--data-dir", docked, check=2)
    err = proc.stderr
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "5 bad row(s), nothing imported" in err
    for line in (2, 3, 4, 6, 7):
        assert f"line {line}:" in err
    assert "line 1:" not in err and "line 5:" not in err
    assert "\x1b" not in err  # named, escaped
    assert leaf_count(docked) == before
    assert history_of(docked) == []


def test_csv_rows_of_one_recorder_must_move_forward_in_time(docked: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "officers.csv"
    sheet.write_text(
        "REC0001,张三,2026-11-20T00:00:00Z\nREC0001,李四,2026-11-19T00:00:00Z\n", "utf-8"
    )
    proc = run_cli("assign", "--import", sheet, "--by", "IT", "--data-dir", docked, check=2)
    assert "line 2:" in proc.stderr and "(line 1)" in proc.stderr
    assert history_of(docked) == []


def test_a_csv_that_is_not_utf8_names_its_line(docked: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "gbk.csv"
    sheet.write_bytes("REC0001,张三\n".encode() + "REC0002,李四\n".encode("gbk"))
    proc = run_cli("assign", "--import", sheet, "--by", "IT", "--data-dir", docked, check=2)
    assert "line 2 is not UTF-8" in proc.stderr
    assert history_of(docked) == []


def test_a_fifo_given_as_the_csv_is_refused_without_hanging(docked: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "officers.csv"
    os.mkfifo(fifo)
    proc = run_cli("assign", "--import", fifo, "--by", "IT", "--data-dir", docked, timeout=60)
    assert proc.returncode == 2 and "not a file" in proc.stderr


def test_collector_precedence(docked: Path) -> None:
    station = _station(docked)
    try:
        conn, led = station.conn, station.ledger()
        at = "2026-11-22T08:00:00.000000Z"

        def who(device: str | None = "000123", cli: str | None = None) -> tuple[str | None, str]:
            return collector_for(conn, "REC0001", at, device_officer=device, cli_officer=cli)

        assert who(device=None) == (None, "none")
        assert who() == ("000123", "device-info")
        assign(conn, led, "REC0001", "张三", set_by="admin", valid_from="2026-11-22T00:00:00Z")
        assert who() == ("张三", "assignment")
        assert who(cli="李四") == ("李四", "cli")
        # Before the assignment started, and for another recorder, it does not apply.
        assert collector_for(
            conn, "REC0001", "2026-11-21T23:59:59Z", device_officer="000123", cli_officer=None
        ) == ("000123", "device-info")
        assert collector_for(conn, "REC0002", at, device_officer=None, cli_officer=None) == (
            None,
            "none",
        )
        # The next assignment closes it: a time after that names the new officer.
        assign(conn, led, "REC0001", "王五", set_by="admin", valid_from="2026-11-23T00:00:00Z")
        assert who() == ("张三", "assignment")
        assert collector_for(
            conn, "REC0001", "2026-11-23T00:00:00Z", device_officer=None, cli_officer=None
        ) == ("王五", "assignment")
    finally:
        station.close()


def test_what_a_recorder_says_is_history_and_never_outranks_a_person(docked: Path) -> None:
    station = _station(docked)
    try:
        conn, led = station.conn, station.ledger()
        said = record_device_officer(conn, led, "REC0007", "000123", "2026-11-01T00:00:00Z")
        assert said is not None and said.source == "device-info"
        # The same officer again, and a docking dated before it, record nothing.
        assert record_device_officer(conn, led, "REC0007", "000123", "2026-11-02T00:00:00Z") is None
        assert record_device_officer(conn, led, "REC0007", "000999", "2026-10-01T00:00:00Z") is None
        # What the recorder said is history: what it says now is used.
        assert collector_for(
            conn, "REC0007", "2026-11-03T00:00:00Z", device_officer="000999", cli_officer=None
        ) == ("000999", "device-info")
        # A person's assignment may date back before the recorder's last docking ...
        made = assign(
            conn, led, "REC0007", "张三", set_by="admin", valid_from="2026-10-15T00:00:00Z"
        ).made
        assert [(a.source, a.valid_to) for a in made] == [("cli", None)]
        # ... and what the recorder says later neither closes nor outranks it.
        later = "2099-01-01T00:00:00Z"
        assert record_device_officer(conn, led, "REC0007", "000999", later) is not None
        assert collector_for(conn, "REC0007", later, device_officer="000999", cli_officer=None) == (
            "张三",
            "assignment",
        )
        rows = history(conn, "REC0007")
        assert [(a.source, a.officer, a.valid_to) for a in rows] == [
            ("cli", "张三", None),
            ("device-info", "000123", later.replace("Z", ".000000Z")),
            ("device-info", "000999", None),
        ]
        sign(station)
    finally:
        station.close()
    assert run_cli("verify", "--data-dir", docked).returncode == 0


def test_a_failed_import_rolls_back_inside_the_callers_connection(
    docked: Path, tmp_path: Path
) -> None:
    """All rows or none holds in the library call too: no leaf, no row, no transaction
    left open, and the connection goes on working."""
    station = _station(docked)
    sheet = tmp_path / "officers.csv"
    sheet.write_text("REC0001,张三\nREC0002,李四,nonsense\n", "utf-8")
    try:
        before, rows = Ledger(station.conn, station.station_id).size(), history(station.conn)
        with pytest.raises(AssignmentError, match="line 2"):
            import_csv(station.conn, station.ledger(), sheet, set_by="IT")
        assert Ledger(station.conn, station.station_id).size() == before
        assert not station.conn.in_transaction
        assert history(station.conn) == rows
        assign(station.conn, station.ledger(), "REC0009", "赵六", set_by="admin")
        assert [a.recorder for a in history(station.conn)] == [
            *(a.recorder for a in rows),
            "REC0009",
        ]
    finally:
        station.close()


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (("REC0001",), "give the recorder and its officer"),
        (("REC0001", " "), "officer is empty"),
        (("REC0001", "A", "--from", "yesterday"), "not a time"),
        (("REC0001", "A", "--from", "2026-11-22T08:00:00"), "no time zone"),
        (("--import", "x.csv"), "--by"),
        (("--list", "REC0001", "--by", "me"), "--list"),
        (("--import", "/no/such.csv", "--by", "IT"), "cannot read"),
        (("REC0001", "A", "--by", "\u202eevil"), "control or format"),
    ],
)
def test_bad_assign_input_is_one_line_and_no_leaf(
    docked: Path, args: tuple[str, ...], word: str
) -> None:
    before = leaf_count(docked)
    proc = run_cli("assign", *args, "--data-dir", docked)
    assert proc.returncode == 2, proc.stderr
    assert word in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert leaf_count(docked) == before
