"""Reading a station config file into :class:`StationConfig`, with errors by key path."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from config.models import StationConfig
from config.paths import require_usable_paths
from config.problems import ConfigError, ConfigProblem
from config.wording import plain_problems

DEFAULT_CONFIG_NAME = "station.toml"


def default_config_text() -> str:
    return resources.files("config").joinpath(DEFAULT_CONFIG_NAME).read_text("utf-8")


def parse_config(data: dict[str, Any], source: str = "<config>") -> StationConfig:
    try:
        return StationConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, plain_problems(exc)) from None


def load_config(path: Path) -> StationConfig:
    """Load and validate ``path``; raise :class:`ConfigError` naming each bad key."""
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        problem = "does not exist; give the path of the station's config file"
        raise ConfigError(str(path), [ConfigProblem("(file)", problem)]) from None
    except UnicodeDecodeError:
        problem = "is not UTF-8 text; save the file as UTF-8"
        raise ConfigError(str(path), [ConfigProblem("(file)", problem)]) from None
    except OSError as exc:
        problem = f"cannot be read ({exc.strerror or exc}); check the path and its permissions"
        raise ConfigError(str(path), [ConfigProblem("(file)", problem)]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = f"{exc}; fix the TOML syntax there"
        raise ConfigError(str(path), [ConfigProblem("(toml)", problem)]) from None
    return parse_config(data, str(path))


@dataclass(frozen=True)
class CheckedConfig:
    """A config that is valid and whose folders can be used; ``warnings`` to show."""

    config: StationConfig
    warnings: list[ConfigProblem]


def check_config_file(path: Path) -> CheckedConfig:
    """Everything ``check-config`` checks: the file, every value, and the folders.

    Raises :class:`ConfigError` listing every error; a config that passes can start a
    station (``run`` makes the same call before it starts).
    """
    config = load_config(path)
    return CheckedConfig(config, require_usable_paths(config, str(path)))
