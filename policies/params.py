"""Parameter validation shared by the built-in policies."""

from __future__ import annotations

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
