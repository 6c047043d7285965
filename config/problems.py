"""What is wrong with a station config: one problem per key, and the error that lists them.

::

    ConfigProblem   one key's problem: key path first, a sentence saying what to write,
                    severity "error" (the config cannot be used) or "warning" (it can,
                    but probably not as meant)
    ConfigError     the config cannot be used; ``str()`` is what the CLI prints
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class ConfigProblem:
    key: str
    reason: str
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        if self.severity == "warning":
            return f"{self.key}: warning: {self.reason}"
        return f"{self.key}: {self.reason}"


class ConfigError(Exception):
    """The config cannot be used; ``problems`` lists each error with its key path.

    ``str()`` is the message the CLI prints: ``FILE: invalid config, fix these keys:``
    then one indented line per problem.
    """

    exit_code = 2

    def __init__(self, source: str, problems: Iterable[ConfigProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{source}: invalid config, fix these keys:\n{lines}")
