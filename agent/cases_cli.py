"""`evidock case create|show|list|edit|close`: cases as first-class records."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the case commands (none yet)."""
