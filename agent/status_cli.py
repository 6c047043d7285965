"""``evidock status`` (the station at a glance, the same data as the API's status) and
``evidock token create|list|revoke`` (the API's bearer tokens; docs/api.md)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from agent.station_args import add_station_options, open_station
from agent.status import station_status, status_lines
from agent.tokens import ROLES, Token, TokenStore
from config.common import printable


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=1))


def cmd_status(args: argparse.Namespace) -> int:
    station = open_station(args)
    try:
        status = station_status(station, station.conn, probe=not args.no_probe)
    finally:
        station.close()
    if args.json:
        _print_json(status)
    else:
        print("\n".join(status_lines(status)))
    return 0 if status["health"] == "ok" else 1


def _token_line(token: Token) -> str:
    state = "active" if token.active else f"revoked {token.revoked_at}"
    note = f"  ({token.note})" if token.note else ""
    return printable(
        f"{token.token_id}  {token.role:<8} {token.owner}  made {token.created_at}"
        f"{' by ' + token.created_by if token.created_by else ''}  {state}{note}"
    )


def cmd_token(args: argparse.Namespace) -> int:
    station = open_station(args)
    try:
        store = TokenStore(station.conn)
        if args.action == "create":
            made, text = store.create(args.role, args.owner, note=args.note, by=args.by)
            if args.json:
                _print_json({**made.as_json(), "token": text})
            else:
                print(text)
            print(
                printable(
                    f"evidock token: token {made.token_id} for {made.owner} ({made.role}) made; "
                    "it is shown this once and the station keeps only its hash: hand it over "
                    f"now (`evidock token revoke {made.token_id}` withdraws it)"
                ),
                file=sys.stderr,
            )
        elif args.action == "list":
            tokens = store.tokens(include_revoked=not args.active)
            if args.json:
                _print_json({"tokens": [t.as_json() for t in tokens]})
            elif not tokens:
                print("no tokens: `evidock token create --role ROLE --owner ID` makes one")
            else:
                print("\n".join(_token_line(t) for t in tokens))
        else:
            token = store.revoke(args.token_id, by=args.by)
            if args.json:
                _print_json(token.as_json())
            else:
                print(_token_line(token))
    finally:
        station.close()
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "status",
        help="the station at a glance: slots, sessions, queue, disk, checkpoint, anchor",
        description="Slots, sessions, upload queue depth, disk free, the last checkpoint and "
        "anchor and their age, and whether the MQTT broker and the bucket answer (where "
        "configured): the same data as the API's /api/v1/status. Exit 1 while the station "
        "has a problem.",
    )
    add_station_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-probe", action="store_true", help="do not ask the broker and the bucket")
    p.set_defaults(func=cmd_status)

    p = subparsers.add_parser(
        "token",
        help="API bearer tokens: create (shown once), list, revoke",
        description="Make, list and revoke the management API's bearer tokens. A token is "
        "printed once, when made; the station keeps only its hash.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a token (printed once)")
    add_station_options(create)
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument(
        "--owner", required=True, help="the person id it acts as ([sensitivity], ledger)"
    )
    create.add_argument("--note", help="what it is for (a script, a kiosk)")
    create.add_argument("--by", help="who makes it")
    create.add_argument("--json", action="store_true", help="print one JSON object")
    listing = actions.add_parser("list", help="every token: id, role, owner, state; never secrets")
    add_station_options(listing)
    listing.add_argument("--active", action="store_true", help="only tokens not revoked")
    listing.add_argument("--json", action="store_true", help="print one JSON object")
    revoke = actions.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("token_id", help="the token's id (as token list shows it)")
    add_station_options(revoke)
    revoke.add_argument("--by", help="who revokes it")
    revoke.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_token)
