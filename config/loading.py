"""Reading a station config file into :class:`StationConfig`, with errors by key path."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.models import StationConfig

DEFAULT_CONFIG_NAME = "station.toml"


@dataclass(frozen=True)
class ConfigProblem:
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.key}: {self.reason}"


class ConfigError(Exception):
    """The config cannot be used; ``problems`` lists each error with its key path."""

    def __init__(self, source: str, problems: list[ConfigProblem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: invalid config, fix these keys:\n{lines}")


def default_config_text() -> str:
    return resources.files("config").joinpath(DEFAULT_CONFIG_NAME).read_text("utf-8")


def parse_config(data: dict[str, Any], source: str = "<config>") -> StationConfig:
    try:
        return StationConfig.model_validate(data)
    except ValidationError as exc:
        problems = [
            ConfigProblem(".".join(str(part) for part in err["loc"]) or "(root)", err["msg"])
            for err in exc.errors()
        ]
        raise ConfigError(source, problems) from None


def load_config(path: Path) -> StationConfig:
    """Load and validate ``path``; raise :class:`ConfigError` naming each bad key."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [ConfigProblem("(file)", "does not exist")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [ConfigProblem("(file)", f"cannot be read: {exc}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [ConfigProblem("(toml)", str(exc))]) from None
    return parse_config(data, str(path))
