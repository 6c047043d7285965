"""Station settings: typed, validated config models and the default station config."""

from config.loading import (
    ConfigError,
    ConfigProblem,
    default_config_text,
    load_config,
    parse_config,
)
from config.models import (
    DeliverySection,
    DockingSection,
    HashingSection,
    LedgerSection,
    PathsSection,
    StationConfig,
    StationSection,
)

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "DeliverySection",
    "DockingSection",
    "HashingSection",
    "LedgerSection",
    "PathsSection",
    "StationConfig",
    "StationSection",
    "default_config_text",
    "load_config",
    "parse_config",
]
