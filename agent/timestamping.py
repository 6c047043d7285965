"""Trusted timestamps (RFC 3161, 可信时间戳) of every published checkpoint.

After an anchor is published (``agent.anchoring.publish_checkpoint``) it is queued in
``checkpoint_timestamps`` and every pending anchor is sent to the configured TSA (as
SHA-256 of the anchor's text). A token is kept once it checks against the configured
CA (``ledger.timestamp``): in the database, as ``DIR/timestamps/<anchor name>.tsr``,
and beside the anchor in the delivery target (``<anchor name>.tsr``). A TSA that is
down leaves the anchor pending and never stops what signed it; the next checkpoint, the
daemon's next pass or any command that signs asks again.

Tokens are not ledger leaves: a leaf about a token would need a newer checkpoint, which
would need a token of its own, without end. ``evidock verify`` checks them
(``timestamp_lines``) and exports carry them (``ledger.timestamp_package``).
"""

from __future__ import annotations

import hashlib
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from agent.delivery import anchor_prefix
from agent.station import Station
from config.common import iso_utc, transaction, utc_now, write_atomic, write_new
from config.timestamping import TimestampingSection
from ledger import (
    TOKEN_SUFFIX,
    Anchor,
    LedgerError,
    TimestampError,
    TokenCheck,
    check_token,
    der_sorted,
    read_certificates,
)
from uploader import (
    AnchorBytesTarget,
    DeliveryError,
    FolderTarget,
    Target,
    TsaClient,
    TsaRefused,
    TsaUnavailable,
)

log = logging.getLogger("evidock")

TIMESTAMPS_DIR = "timestamps"


@dataclass(frozen=True)
class Pending:
    anchor_sha256: str
    anchor_name: str
    tree_size: int
    anchor: str


@dataclass
class TimestampPass:
    """What one pass did: tokens kept, still pending, refused, and why."""

    stamped: int = 0
    pending: int = 0
    refused: int = 0
    published: int = 0
    problem: str | None = None


def queue_anchor(conn: sqlite3.Connection, anchor: Anchor) -> None:
    """Queue ``anchor`` for a token (nothing if it is queued or stamped already)."""
    text = anchor.text()
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    with transaction(conn):
        conn.execute(
            "INSERT OR IGNORE INTO checkpoint_timestamps"
            " (anchor_sha256, anchor_name, tree_size, anchor, queued_at) VALUES (?, ?, ?, ?, ?)",
            (digest, anchor.file_name(), anchor.checkpoint.size, text, iso_utc(utc_now())),
        )


def after_publish(
    station: Station, conn: sqlite3.Connection, target: Target | None, anchor: Anchor
) -> TimestampPass | None:
    """The hook of ``publish_checkpoint``: queue the anchor, then work every pending one.

    Never raises: a TSA, CA file or target problem is logged and the token waits.
    """
    settings = station.config.timestamping
    if not settings.enabled:
        return None
    try:
        queue_anchor(conn, anchor)
        return stamp_pending(station, conn, target)
    except (sqlite3.Error, OSError, DeliveryError, TimestampError) as exc:
        log.warning("trusted timestamp of %s waits: %s", anchor.file_name(), exc)
        return TimestampPass(problem=str(exc))


def stamp_pending(
    station: Station, conn: sqlite3.Connection, target: Target | None
) -> TimestampPass:
    """Ask the TSA for every pending anchor's token, keep the ones that check, and put
    kept tokens beside their anchors in ``target`` (None: not now)."""
    settings = station.config.timestamping
    done = TimestampPass()
    if not settings.enabled:
        return done
    roots, tsa_cert = trust(settings)
    ca_pem = Path(str(settings.ca_file)).read_text("utf-8")
    client = TsaClient(settings.url, timeout=settings.timeout_seconds, readable=der_sorted)
    pending = _pending(conn)
    for index, row in enumerate(pending):
        try:
            reply = client.stamp(row.anchor.encode("utf-8"))
            check = check_token(
                reply.token,
                row.anchor.encode("utf-8"),
                roots,
                tsa_cert=tsa_cert,
                policy=settings.policy_oid or None,
                nonce=reply.nonce,
            )
        except TsaUnavailable as exc:
            # The TSA is down: the rest would wait out the same timeout for nothing.
            _failed(conn, pending[index:], str(exc))
            done.pending += len(pending) - index
            done.problem = str(exc)
            log.warning("trusted timestamps pending (%d): %s", len(pending) - index, exc)
            break
        except (TsaRefused, TimestampError) as exc:
            _failed(conn, [row], str(exc))
            done.refused += 1
            done.problem = str(exc)
            log.error("TSA token for %s not kept: %s", row.anchor_name, exc)
            continue
        _keep(station, conn, row, reply.token, check, ca_pem)
        done.stamped += 1
    if target is not None:
        done.published = publish_tokens(conn, target, anchor_prefix(station))
    return done


def trust(settings: TimestampingSection) -> tuple[list[x509.Certificate], x509.Certificate | None]:
    """The configured TSA CA(s), and the TSA certificate when one is given."""
    if settings.ca_file is None:
        raise TimestampError("timestamping.ca_file is not set: give the TSA's CA (PEM)")
    roots = read_certificates(settings.ca_file)
    cert = None if settings.tsa_cert_file is None else read_certificates(settings.tsa_cert_file)[0]
    return roots, cert


def _pending(conn: sqlite3.Connection) -> list[Pending]:
    rows = conn.execute(
        "SELECT anchor_sha256, anchor_name, tree_size, anchor FROM checkpoint_timestamps"
        " WHERE token IS NULL ORDER BY tree_size, queued_at"
    ).fetchall()
    return [Pending(str(r[0]), str(r[1]), int(r[2]), str(r[3])) for r in rows]


def _failed(conn: sqlite3.Connection, rows: Sequence[Pending], why: str) -> None:
    with transaction(conn):
        conn.executemany(
            "UPDATE checkpoint_timestamps SET attempts = attempts + 1, last_error = ?"
            " WHERE anchor_sha256 = ?",
            [(why[:500], row.anchor_sha256) for row in rows],
        )


def token_dir(station: Station) -> Path:
    return station.data_dir / TIMESTAMPS_DIR


def _keep(
    station: Station,
    conn: sqlite3.Connection,
    row: Pending,
    token: bytes,
    check: TokenCheck,
    ca_pem: str,
) -> None:
    with transaction(conn):
        conn.execute(
            "UPDATE checkpoint_timestamps SET token = ?, gen_time = ?, tsa = ?, tsa_ca = ?,"
            " stamped_at = ?, attempts = attempts + 1, last_error = NULL"
            " WHERE anchor_sha256 = ? AND token IS NULL",
            (
                token,
                check.gen_time_text(),
                check.tsa,
                ca_pem,
                iso_utc(utc_now()),
                row.anchor_sha256,
            ),
        )
        # Another process may have kept its own token first: the file follows the row.
        kept = conn.execute(
            "SELECT token FROM checkpoint_timestamps WHERE anchor_sha256 = ?",
            (row.anchor_sha256,),
        ).fetchone()[0]
    folder = token_dir(station)
    folder.mkdir(mode=0o755, exist_ok=True)
    write_atomic(folder / f"{row.anchor_name}{TOKEN_SUFFIX}", bytes(kept), 0o444)
    log.info("trusted timestamp of %s: %s by %s", row.anchor_name, check.gen_time_text(), check.tsa)


def publish_tokens(conn: sqlite3.Connection, target: Target, prefix: str | None = None) -> int:
    """Put every kept token not yet published beside its anchor; how many were put."""
    rows = conn.execute(
        "SELECT anchor_sha256, anchor_name, anchor, token FROM checkpoint_timestamps"
        " WHERE token IS NOT NULL AND published_to IS NULL ORDER BY tree_size"
    ).fetchall()
    put = 0
    for digest, name, text, token in rows:
        try:
            where = put_token(target, str(name), str(text), bytes(token), prefix)
        except DeliveryError as exc:
            log.warning("token of %s not beside its anchor yet: %s", name, exc)
            break
        if where is None:
            continue
        with transaction(conn):
            conn.execute(
                "UPDATE checkpoint_timestamps SET published_to = ? WHERE anchor_sha256 = ?",
                (where, digest),
            )
        put += 1
    return put


def put_token(
    target: Target, name: str, anchor_text: str, token: bytes, prefix: str | None = None
) -> str | None:
    """Write ``token`` once beside the anchor ``name`` in ``target``; where it is, or None
    when the target cannot hold bytes beside its anchors yet (the token stays local)."""
    if isinstance(target, AnchorBytesTarget):  # S3: beside the anchor, locked like it
        return target.put_anchor_bytes(f"{name}{TOKEN_SUFFIX}", token, prefix=prefix)
    if not isinstance(target, FolderTarget):
        return None
    # Where the folder holds the anchor (publishing the same text again is a no-op).
    anchor_path = Path(target.put_anchor(name, anchor_text, prefix=prefix))
    path = anchor_path.with_name(anchor_path.name + TOKEN_SUFFIX)
    try:
        if not write_new(path, token, 0o444) and path.read_bytes() != token:
            raise DeliveryError(
                f"{path} already holds another token; tokens beside anchors are write-once "
                "— investigate before publishing again"
            )
    except OSError as exc:
        raise DeliveryError(f"cannot write {path}: {exc.strerror or exc}") from None
    return str(path)


# --- verify ---------------------------------------------------------------------------


def timestamp_lines(
    conn: sqlite3.Connection,
    settings: TimestampingSection,
    *,
    data_dir: Path | None = None,
    anchors: Sequence[Path] = (),
) -> tuple[list[str], bool]:
    """What ``evidock verify`` says of trusted timestamps: a line per checkpoint
    (timestamped at genTime by the TSA, pending, or INVALID) and per given anchor file
    with a token beside it; and whether any is INVALID (exit 1).

    Tokens are checked against the configured CA (``timestamping.ca_file``) and over the
    anchor each was asked for, which must be the checkpoint the station signed at that
    size; ``data_dir``'s copies of the tokens must be the database's.
    """
    rows = _rows(conn)
    besides = [(p, p.with_name(p.name + TOKEN_SUFFIX)) for p in anchors]
    besides = [(a, t) for a, t in besides if t.is_file()]
    if not rows and not besides:
        return [], False
    try:
        roots, tsa_cert = trust(settings)
    except TimestampError as exc:
        return [f"trusted timestamps not checked: {exc}"], False
    signed = dict(conn.execute("SELECT tree_size, note FROM ledger_checkpoints").fetchall())
    policy = settings.policy_oid or None
    lines: list[str] = []
    invalid = False
    for name, size, text, token, attempts, error in rows:
        label = f"checkpoint {size} ({name})"
        if token is None:
            lines.append(f"{label}: trusted timestamp pending ({attempts} tries: {error})")
            continue
        why = _anchor_problem(text, size, signed.get(size))
        copy = None if data_dir is None else data_dir / TIMESTAMPS_DIR / f"{name}{TOKEN_SUFFIX}"
        if why is None and copy is not None and copy.is_file() and copy.read_bytes() != token:
            why = f"{copy} is not the token the station kept"
        try:
            if why is None:
                check = check_token(
                    bytes(token), text.encode("utf-8"), roots, tsa_cert=tsa_cert, policy=policy
                )
        except TimestampError as exc:
            why = str(exc)
        if why is not None:
            invalid = True
            lines.append(f"{label}: trusted timestamp INVALID: {why}")
        else:
            lines.append(f"{label}: timestamped at {check.gen_time_text()} by {check.tsa}")
    for anchor_path, token_path in besides:
        try:
            check = check_token(
                token_path.read_bytes(),
                anchor_path.read_bytes(),
                roots,
                tsa_cert=tsa_cert,
                policy=policy,
            )
        except (OSError, TimestampError) as exc:
            invalid = True
            lines.append(f"anchor {anchor_path}: trusted timestamp INVALID: {exc}")
            continue
        lines.append(f"anchor {anchor_path}: timestamped at {check.gen_time_text()} by {check.tsa}")
    return lines, invalid


def _rows(conn: sqlite3.Connection) -> list[tuple[str, int, str, bytes | None, int, str]]:
    try:
        found = conn.execute(
            "SELECT anchor_name, tree_size, anchor, token, attempts, last_error"
            " FROM checkpoint_timestamps ORDER BY tree_size, queued_at"
        ).fetchall()
    except sqlite3.OperationalError:  # a database from before timestamps
        return []
    return [(str(r[0]), int(r[1]), str(r[2]), r[3], int(r[4]), str(r[5])) for r in found]


def _anchor_problem(text: str, size: int, note: str | None) -> str | None:
    try:
        anchor = Anchor.parse(text)
    except LedgerError as exc:
        return f"the anchor it covers cannot be read: {exc}"
    if anchor.checkpoint.size != size or note is None or anchor.note != note:
        return f"the anchor it covers is not the checkpoint of size {size} the station signed"
    return None
