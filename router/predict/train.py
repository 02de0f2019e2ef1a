"""`tokenrouter train`: fits the predictors from request logs, exports them to ONNX, writes the
model card. Needs the `train` extra (scikit-learn, skl2onnx): `pip install 'tokenrouter[train]'`.

Each target (router/predict/features.py) gets a HistGradientBoostingRegressor on log1p(target).
The held-out error is measured by models fit on the first `1 - holdout` of the rows in time and
judged on the rest, per backend, next to the analytic estimate the router made at the decision;
the models written out are then fit on all rows. The three regressors are joined into one ONNX
graph (one input, an output per target), so that serving runs one session call per batch.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from router.predict.features import FEATURES, TARGETS
from router.predict.model import CARD, FORMAT

MODEL_FILE = "predictors.onnx"
MIN_ROWS = 20  # rows with every target, below which nothing is fit
INPUT = "features"


class TrainingError(ValueError):
    """Training cannot go on (too few rows, a missing extra); the message says why."""


def matrix(rows: Sequence[dict[str, Any]], backends: Sequence[str]) -> np.ndarray:
    """The model input for `rows`: a one-hot column per backend, then FEATURES (float32)."""
    index = {b: i for i, b in enumerate(backends)}
    x = np.zeros((len(rows), len(backends) + len(FEATURES)), np.float32)
    for i, row in enumerate(rows):
        x[i, index[row["backend"]]] = 1.0
        x[i, len(backends) :] = row["features"]
    return x


def fit(rows: Sequence[dict[str, Any]], backends: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """One regressor per target, on the rows that measured it."""
    try:
        from sklearn.ensemble import HistGradientBoostingRegressor
    except ImportError:
        raise TrainingError(
            "training needs scikit-learn: pip install 'tokenrouter[train]'"
        ) from None
    models = {}
    for target in TARGETS:
        usable = [r for r in rows if r[target] is not None]
        if len(usable) < MIN_ROWS:
            raise TrainingError(f"{target}: {len(usable)} rows measure it (at least {MIN_ROWS})")
        model = HistGradientBoostingRegressor(
            max_iter=200,
            learning_rate=0.1,
            max_leaf_nodes=15,
            min_samples_leaf=max(2, min(20, len(usable) // 20)),
            random_state=seed,
        )
        model.fit(matrix(usable, backends), np.log1p([r[target] for r in usable]))
        models[target] = model
    return models


def predict(models: dict[str, Any], x: np.ndarray) -> dict[str, np.ndarray]:
    """Each target for the rows of `x`, as scikit-learn computes it (for the card and tests)."""
    return {t: np.expm1(m.predict(x)) for t, m in models.items()}


def export(models: dict[str, Any], width: int) -> bytes:
    """The regressors as one ONNX model: input `features` [N, width], an output per target."""
    try:
        import onnx
        from onnx import compose, helper
        from skl2onnx import to_onnx
    except ImportError:
        raise TrainingError("export needs skl2onnx: pip install 'tokenrouter[train]'") from None
    sample = np.zeros((1, width), np.float32)
    nodes: list[Any] = []
    initializers: list[Any] = []
    outputs = []
    opsets: dict[str, int] = {}
    ir_version = 0
    for target in TARGETS:
        part = to_onnx(models[target], sample, target_opset={"": 17, "ai.onnx.ml": 3})
        part = compose.add_prefix(part, prefix=f"{target}/")
        graph = part.graph
        nodes.append(helper.make_node("Identity", [INPUT], [graph.input[0].name]))
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
        nodes.append(helper.make_node("Identity", [graph.output[0].name], [target]))
        outputs.append(helper.make_tensor_value_info(target, onnx.TensorProto.FLOAT, [None, 1]))
        for opset in part.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
        ir_version = max(ir_version, part.ir_version)
    features = helper.make_tensor_value_info(INPUT, onnx.TensorProto.FLOAT, [None, width])
    graph = helper.make_graph(nodes, "tokenrouter-predictors", [features], outputs, initializers)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())]
    )
    model.ir_version = ir_version
    onnx.checker.check_model(model)
    return model.SerializeToString()


def held_out(
    train_rows: Sequence[dict[str, Any]],
    test_rows: Sequence[dict[str, Any]],
    backends: list[str],
    models: dict[str, Any] | None = None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Per backend: MAPE of TTFT, total time and output length on `test_rows`, by `models` (else
    ones fit on `train_rows`) and by the analytic estimates logged with each decision."""
    models = models or fit(train_rows, backends)
    report: dict[str, dict[str, dict[str, float]]] = {}
    for backend in backends:
        rows = [r for r in test_rows if r["backend"] == backend]
        if not rows:
            continue
        p = predict(models, matrix(rows, backends))
        outputs = np.clip(np.round(p["output_tokens"]), 1, [r["features"][1] for r in rows])
        total = p["ttft_ms"] + np.maximum(outputs - 1, 0) * p["tpot_ms"]
        report[backend] = {
            "ttft_ms": _errors(rows, "ttft_ms", p["ttft_ms"], "est_ttft_ms"),
            "total_ms": _errors(rows, "total_ms", total, "est_total_ms"),
            "output_tokens": _errors(rows, "output_tokens", outputs, None),
        }
    return report


def _errors(
    rows: Sequence[dict[str, Any]], target: str, predicted: np.ndarray, analytic: str | None
) -> dict[str, float]:
    keep = [i for i, r in enumerate(rows) if r[target]]
    if not keep:
        return {"rows": 0}
    actual = np.array([rows[i][target] for i in keep])
    model_mape = float(np.mean(np.abs(predicted[keep] - actual) / actual) * 100)
    if analytic is None:  # the analytic output length is max_tokens
        estimate = np.array([rows[i]["features"][1] for i in keep])
    else:
        estimate = np.array([rows[i][analytic] for i in keep])
    analytic_mape = float(np.mean(np.abs(estimate - actual) / actual) * 100)
    return {"rows": len(keep), "model_mape": model_mape, "analytic_mape": analytic_mape}


def ttft_error(predict_ttft: Any, rows: Sequence[dict[str, Any]]) -> float:
    """MAPE (%) of TTFT over `rows` by `predict_ttft(rows) -> array of ms`."""
    actual = np.array([r["ttft_ms"] for r in rows])
    return float(np.mean(np.abs(predict_ttft(rows) - actual) / actual) * 100)


def serving_error(folder: Path, rows: Sequence[dict[str, Any]]) -> tuple[float, list] | None:
    """The TTFT MAPE of the predictors served from `folder` on the `rows` whose backend they
    know, and those rows; None when the folder holds no loadable predictors."""
    from router.predict.model import PredictorError, Predictors

    try:
        current = Predictors.load(folder)
    except PredictorError:
        return None
    known = [r for r in rows if r["backend"] in current.card.backends]
    if not known:
        return None

    def predict_ttft(batch: Sequence[dict[str, Any]]) -> np.ndarray:
        return current.run(matrix(batch, current.card.backends))["ttft_ms"]

    return ttft_error(predict_ttft, known), known


def train(
    rows: Sequence[dict[str, Any]],
    out: str | Path,
    *,
    holdout: float = 0.3,
    sources: Sequence[str] = (),
    if_better: bool = False,
) -> dict[str, Any]:
    """Fits, exports and writes `out`/predictors.onnx, card.json and MODEL_CARD.md; returns the
    card. `rows` are in time order (router/predict/observations.py).

    `if_better`: the folder is replaced only if the new models (fit on the first 1 - holdout)
    predict TTFT better on the latest `holdout` rows than the predictors already in `out` do
    (rows of backends both know); otherwise nothing is written and the result says `kept`."""
    complete = [r for r in rows if all(r[t] is not None for t in TARGETS)]
    if len(complete) < MIN_ROWS:
        raise TrainingError(
            f"{len(complete)} finished attempts in the logs (at least {MIN_ROWS} are needed)"
        )
    backends = sorted({r["backend"] for r in rows})
    cut = int(len(rows) * (1 - holdout))
    report: dict[str, Any] = {}
    comparison: dict[str, float] = {}
    if 0 < holdout < 1:
        early = fit(rows[:cut], backends)
        report = held_out(rows[:cut], rows[cut:], backends, early)
        if if_better and (current := serving_error(Path(out), rows[cut:])) is not None:
            error, known = current

            def candidate(batch: Sequence[dict[str, Any]]) -> np.ndarray:
                return predict({"ttft_ms": early["ttft_ms"]}, matrix(batch, backends))["ttft_ms"]

            comparison = {"current_ttft_mape": error, "new_ttft_mape": ttft_error(candidate, known)}
            if comparison["new_ttft_mape"] >= error:
                return {"kept": True, **comparison}
    models = fit(rows, backends)
    blob = export(models, len(backends) + len(FEATURES))
    x = matrix(rows, backends)
    card = {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": MODEL_FILE,
        "features": ["backend=" + b for b in backends] + list(FEATURES),
        "backends": backends,
        "ranges": {
            f: [float(x[:, len(backends) + i].min()), float(x[:, len(backends) + i].max())]
            for i, f in enumerate(FEATURES)
        },
        "outputs": {t: t for t in TARGETS},
        "transform": "log1p",
        "rows": {t: sum(r[t] is not None for r in rows) for t in TARGETS},
        "time_span": [rows[0]["ts"], rows[-1]["ts"]],
        "holdout": holdout,
        "held_out": report,
        "replaced": comparison,  # with if_better: the TTFT errors that decided it
        "sources": list(sources),
    }
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    _write(directory / MODEL_FILE, blob)
    _write(directory / "MODEL_CARD.md", markdown(card).encode())
    _write(directory / CARD, json.dumps(card, indent=2).encode())  # last: it names the model
    return card


def markdown(card: dict[str, Any]) -> str:
    """The model card for people: what was learned from what, and how well."""
    start, end = (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) for t in card["time_span"])
    lines = [
        "# tokenrouter predictors",
        "",
        f"Trained {card['created']} on {card['rows']['ttft_ms']} attempts from {start} to "
        f"{end} UTC ({', '.join(card['sources']) or 'request logs'}).",
        "",
        "Features: " + ", ".join(card["features"]) + ".",
        "",
        "Targets (log1p, HistGradientBoostingRegressor): "
        + ", ".join(f"{t} ({n} rows)" for t, n in card["rows"].items())
        + ".",
        "",
        f"Held-out error (MAPE, %), models fit on the first {1 - card['holdout']:.0%} of the rows "
        "in time and judged on the rest; `analytic` is the estimate the router made at the "
        "decision (output length: max_tokens):",
        "",
        "| backend | target | rows | model | analytic |",
        "|---|---|---:|---:|---:|",
    ]
    for backend, targets in card["held_out"].items():
        for target, e in targets.items():
            if e.get("rows"):
                lines.append(
                    f"| {backend} | {target} | {e['rows']} | {e['model_mape']:.1f} | "
                    f"{e['analytic_mape']:.1f} |"
                )
    return "\n".join(lines) + "\n"


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
