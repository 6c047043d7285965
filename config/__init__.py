"""Station settings: typed, validated config models and the default station config.

``load_config(path)`` reads and validates a file (``ConfigError`` lists each bad key in a
plain sentence); ``check_paths(config)`` looks at its folders; ``check_config_file(path)``
does both, as ``evidock check-config`` and ``evidock run`` need.
"""

from config.loading import (
    CheckedConfig,
    check_config_file,
    default_config_text,
    load_config,
    parse_config,
)
from config.models import (
    DEFAULT_TIME_ZONE,
    DeliverySection,
    DockingSection,
    HashingSection,
    LedgerSection,
    PathsSection,
    StationConfig,
    StationSection,
    known_time_zones,
)
from config.paths import check_paths, require_usable_paths
from config.problems import ConfigError, ConfigProblem

__all__ = [
    "DEFAULT_TIME_ZONE",
    "CheckedConfig",
    "ConfigError",
    "ConfigProblem",
    "DeliverySection",
    "DockingSection",
    "HashingSection",
    "LedgerSection",
    "PathsSection",
    "StationConfig",
    "StationSection",
    "check_config_file",
    "check_paths",
    "default_config_text",
    "known_time_zones",
    "load_config",
    "parse_config",
    "require_usable_paths",
]
