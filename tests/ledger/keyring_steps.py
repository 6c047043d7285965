"""Child process of the keyring crash tests: run one keys-folder operation on a station
data dir and die by SIGKILL right after a named step.

    python keyring_steps.py DATA_DIR OPERATION STEP

OPERATION is ``sign`` (append a leaf, then ``Keyring.sign``) or ``rotate``
(``Keyring.rotate``). STEP is the step to die after, or ``-`` to run to the end. Every
step reached is printed, one a line, before the process acts on it.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from ledger_fixtures import STATION, StepClock

import ledger.keys
from agent.database import open_station_db
from ledger import Keyring, Ledger, origin_for


def main(argv: list[str]) -> int:
    data, operation, stop = Path(argv[1]), argv[2], argv[3]

    def die_after(step: str) -> None:
        print(step, flush=True)
        if step == stop:
            os.kill(os.getpid(), signal.SIGKILL)

    ledger.keys.crash_test_hook = die_after
    conn = open_station_db(data / "station.db")
    led = Ledger(conn, STATION, clock=StepClock())
    ring = Keyring(data / "keys", origin_for(STATION))
    if operation == "sign":
        led.append(
            "clip.accessed",
            {"clip_id": "c3", "who": "a", "purpose": "p", "action": "view", "via": "cli"},
        )
        ring.sign(led)
    elif operation == "rotate":
        ring.rotate(led)
    else:
        print(f"unknown operation {operation}", file=sys.stderr)
        return 2
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
