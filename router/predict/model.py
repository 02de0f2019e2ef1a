"""Serving: a predictor directory (`tokenrouter train --out DIR`) in one onnxruntime session.

The directory holds `card.json` (what the model saw: backends, feature ranges, outputs; plus its
held-out errors) and one ONNX file with an output per target (router/predict/features.py). One
`predict` call runs the session once for every (request, backend) pair of a batch. A pair the
model cannot judge gets a Prediction with `fallback` set, and the analytic estimate decides:
a backend the training data did not have, a feature outside its training range, or a failed run.

Loading reads files and builds the session: call it from a thread on the event loop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from router.config.schema import LoadedConfig
from router.core.framework import BackendView, Prediction, RequestContext
from router.predict.features import FEATURES, TARGETS, serving_row

CARD = "card.json"
MAX_CARD_BYTES = 1 << 20
MAX_MODEL_BYTES = 64 << 20
FORMAT = 1


class PredictorError(ValueError):
    """A predictor directory that cannot be served; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Card:
    """The serving half of a model card."""

    backends: tuple[str, ...]
    ranges: tuple[tuple[float, float], ...]  # per FEATURES entry: min, max seen in training
    model: str  # the ONNX file's name in the directory
    outputs: tuple[str, ...]  # the session's output per TARGETS entry
    raw: dict[str, Any]

    @classmethod
    def parse(cls, doc: Any) -> Card:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise PredictorError(f"{CARD}: not a format-{FORMAT} model card")
        try:
            backends = tuple(str(b) for b in doc["backends"])
            ranges = tuple(
                (float(doc["ranges"][f][0]), float(doc["ranges"][f][1])) for f in FEATURES
            )
            outputs = tuple(str(doc["outputs"][t]) for t in TARGETS)
            model = str(doc["model"])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise PredictorError(f"{CARD}: missing or malformed field {exc}") from None
        if not backends or Path(model).name != model:
            raise PredictorError(f"{CARD}: needs backends and a model file name in the folder")
        return cls(backends, ranges, model, outputs, doc)


class Predictors:
    """A loaded predictor directory; `predict` is safe to call from any thread."""

    def __init__(self, directory: Path, card: Card, session: Any) -> None:
        self.directory = directory
        self.card = card
        self._session = session
        self._input = session.get_inputs()[0].name
        self._outputs = list(card.outputs)
        width = len(card.backends)
        self._onehot = {
            b: tuple(1.0 if i == j else 0.0 for j in range(width))
            for i, b in enumerate(card.backends)
        }

    @classmethod
    def load(cls, path: str | Path) -> Predictors:
        """Reads `path`/card.json and its ONNX file; PredictorError says what is wrong."""
        import onnxruntime

        directory = Path(path).expanduser()
        card_path = directory / CARD
        card = Card.parse(_read_json(card_path))
        model_path = directory / card.model
        try:
            size = model_path.stat().st_size
        except OSError as exc:
            raise PredictorError(f"{model_path}: {exc.strerror or exc}") from None
        if size > MAX_MODEL_BYTES:
            raise PredictorError(f"{model_path}: {size} bytes (at most {MAX_MODEL_BYTES})")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # tiny inputs: a thread pool costs more than it saves
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(
                str(model_path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for a bad file
            raise PredictorError(f"{model_path}: not a loadable ONNX model: {exc}") from None
        names = {o.name for o in session.get_outputs()}
        if missing := [o for o in card.outputs if o not in names]:
            raise PredictorError(f"{model_path}: no output {missing[0]!r} named by {CARD}")
        inputs = session.get_inputs()
        expected = len(card.backends) + len(FEATURES)
        if len(inputs) != 1 or inputs[0].shape[-1] not in (expected, None, "N"):
            raise PredictorError(f"{model_path}: expects one input of {expected} features")
        return cls(directory, card, session)

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Every target (in TARGETS order, undone log1p) for the model-input rows `x`: a one-hot
        column per card backend, then FEATURES (float32); one session run."""
        results = self._session.run(self._outputs, {self._input: x})
        return {
            t: np.expm1(np.asarray(a, np.float64).reshape(-1))
            for t, a in zip(TARGETS, results, strict=True)
        }

    def predict(
        self, batch: Sequence[RequestContext], views: Sequence[BackendView]
    ) -> list[dict[str, Prediction]]:
        """For each request of `batch`, a Prediction per backend of `views`: one session run."""
        out: list[dict[str, Prediction]] = [{} for _ in batch]
        rows: list[tuple[float, ...]] = []
        where: list[tuple[int, str, int]] = []
        onehot, ranges = self._onehot, self.card.ranges
        for r, ctx in enumerate(batch):
            request = ctx.request
            messages, tools = len(request.messages), len(request.tools)
            for view in views:
                name = view.name
                columns = onehot.get(name)
                if columns is None:
                    out[r][name] = Prediction(fallback=f"backend {name} not in the training data")
                    continue
                row = serving_row(
                    ctx.prompt_tokens_on(name),
                    request.max_tokens,
                    view.in_flight,
                    view.queued,
                    messages,
                    tools,
                )
                if why := _outside(row, ranges):
                    out[r][name] = Prediction(fallback=why)
                    continue
                rows.append(columns + row)
                where.append((r, name, request.max_tokens))
        if not rows:
            return out
        try:
            ttft, tpot, length = self.run(np.asarray(rows, np.float32)).values()
        except Exception as exc:  # a model that fails at run time must not fail the request
            failed = Prediction(fallback=f"predictor failed: {exc}")
            for r, name, _ in where:
                out[r][name] = failed
            return out
        for i, (r, name, max_tokens) in enumerate(where):
            tokens = min(max_tokens, max(1, round(float(length[i]))))
            out[r][name] = Prediction(max(0.0, float(ttft[i])), max(0.0, float(tpot[i])), tokens)
        return out


def load_for(loaded: LoadedConfig) -> Predictors | None:
    """The predictors `loaded` configures, or None; a ConfigError naming `predictors.path` when
    they cannot be served (blocking: call it from a thread on the event loop)."""
    path = loaded.config.predictors.path
    if path is None:
        return None
    try:
        return Predictors.load(path)
    except PredictorError as exc:
        raise loaded.error(("predictors", "path"), str(exc)) from None


def _outside(row: tuple[float, ...], ranges: tuple[tuple[float, float], ...]) -> str:
    for name, value, (low, high) in zip(FEATURES, row, ranges, strict=True):
        if value < low or value > high:
            return f"{name} {value:g} outside the training range {low:g}..{high:g}"
    return ""


def _read_json(path: Path) -> Any:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CARD_BYTES + 1)
    except OSError as exc:
        raise PredictorError(f"{path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CARD_BYTES:
        raise PredictorError(f"{path}: larger than {MAX_CARD_BYTES} bytes")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PredictorError(f"{path}: not JSON: {exc}") from None
