"""`tokenrouter train --log FILE... --out DIR`: fits the predictors from request logs.

Reads every attempt the logs recorded (router/predict/observations.py), fits and exports the
models (router/predict/train.py) and prints the model card's held-out table. Exit status: 0 when
DIR was written, 2 when the logs or the environment do not allow training (the message says why).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from router.predict.observations import read_logs
from router.predict.train import TrainingError, markdown, train


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenrouter train",
        description="fit TTFT, time-per-token and output-length predictors from request logs "
        "and export them to ONNX (needs the train extra: pip install 'tokenrouter[train]')",
    )
    parser.add_argument(
        "--log", nargs="+", required=True, metavar="FILE", help="request logs (server.request_log)"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to write the models to")
    parser.add_argument(
        "--holdout",
        type=float,
        default=0.3,
        help="latest share of the rows kept out to measure the error (default 0.3; 0: none)",
    )
    parser.add_argument(
        "--if-better",
        action="store_true",
        help="replace DIR only if the new models predict TTFT better on the held-out rows than "
        "the predictors already in DIR (the online refresh uses this)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 <= args.holdout < 1:
        print("error: --holdout must be in [0, 1)", file=sys.stderr)
        return 2
    try:
        found = read_logs(args.log)
    except OSError as exc:
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        card = train(
            found.rows, args.out, holdout=args.holdout, sources=args.log, if_better=args.if_better
        )
    except TrainingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if card.get("kept"):
        print(
            f"kept the predictors in {args.out}: TTFT MAPE {card['new_ttft_mape']:.1f}% (new) "
            f"vs {card['current_ttft_mape']:.1f}% (current) on the latest rows"
        )
        return 0
    skipped = f", {found.skipped} lines skipped" if found.skipped else ""
    print(f"{found.records} requests, {len(found.rows)} attempts{skipped}; wrote {args.out}")
    print(markdown(card))
    return 0
