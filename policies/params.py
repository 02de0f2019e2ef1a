"""Parameter validation shared by the built-in policies."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

M = TypeVar("M", bound=BaseModel)


class Params(BaseModel):
    """Base for a policy's parameters: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


def parse(model: type[M], parameters: Mapping[str, Any]) -> M:
    """Validates parameters; raises ValueError naming the parameter path and the problem."""
    try:
        return model.model_validate(dict(parameters))
    except ValidationError as exc:
        err = exc.errors()[0]
        path = ".".join(str(p) for p in err["loc"]) or "parameters"
        reason = "unknown parameter" if err["type"] == "extra_forbidden" else err["msg"]
        raise ValueError(f"{path}: {reason.removeprefix('Value error, ')}") from None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_text(seconds: float) -> str:
    """3600 -> "1h", 90 -> "90s": the largest unit that divides the duration."""
    for unit in ("d", "h", "m"):
        if seconds >= _UNITS[unit] and seconds % _UNITS[unit] == 0:
            return f"{seconds / _UNITS[unit]:g}{unit}"
    return f"{seconds:g}s"


def duration(value: Any) -> Any:
    """A window in seconds: a number, or a duration such as "30m", "1h", "1d" (for validators)."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", value)
        if not m:
            raise ValueError(f"not a duration: {value!r} (e.g. 30m, 1h, 1d)")
        value = float(m[1]) * _UNITS[m[2]]
    if not isinstance(value, int | float) or value <= 0:
        raise ValueError("must be a positive duration")
    return value
