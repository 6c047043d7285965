"""The daemon: ingest sessions, case mapping, CLI (later: API and kiosk)."""
