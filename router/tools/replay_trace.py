"""Traces for `tokenrouter replay`: loading, merging, shaping and ratio assignment.

Two formats are read (`load_trace` tells them apart by the first non-blank character):

1. Azure LLM inference traces (CSV, header ``TIMESTAMP,ContextTokens,GeneratedTokens``; timestamps
   like ``2023-11-16 18:15:46.6805900``, taken as UTC). A row asks for exactly the tokens it
   generated (max_tokens = completion_tokens) and carries no privacy class, tenant or SLO.

2. THE request-log format (router/runtime/request_log.py writes it): JSON Lines, one object per
   request,
   never any content::

       {"ts": 1700158546.68, "request_id": "a1", "tenant": "acme", "privacy": "PUBLIC",
        "prompt_tokens": 374, "max_tokens": 256, "completion_tokens": 44, "latency_slo_ms": 500,
        "backend": "gpu", "cost_usd": 0.0001, "ttft_ms": 80.2, "total_ms": 900.5, "status": "OK"}

   ts                float  arrival, unix seconds (replays rebase to the first arrival)  required
   prompt_tokens     int    prompt tokens as the router counted them                      required
   completion_tokens int    tokens generated                                              required
   max_tokens        int    what the request asked for (0 or absent: completion_tokens)
   privacy           str    the effective class: PUBLIC, INTERNAL, CONFIDENTIAL, RESTRICTED (or
                            UNSPECIFIED); content is not replayed, so it is never re-detected
   tenant            str    the tenant
   latency_slo_ms    int    the TTFT SLO the client asked for; 0: none
   status            str    OK, or the error code; a failed row that generated nothing replays
                            with max_tokens of output (what it may have used)
   profile, model    str    optional: the profile and model the client asked for
   messages          int    optional: how many messages it carried (default 1; replayed empty)
   ttft_ms, total_ms float  as the real run measured them (rows with status OK): what a
                            replay's times are compared with (calibration)
   Other keys (request_id, backend, cost_usd, attempts, ...) are ignored.
   Blank lines and lines starting with '#' are skipped.

A field a trace lacks stays None in `TraceRequest`; `assign()` fills privacy and SLO by ratio
with a seeded RNG, and what is still missing replays as UNSPECIFIED / tenant "default" / no SLO.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from router.config import Config
from router.core.errors import InvalidArgument
from router.core.types import ChatMessage, Privacy, Request

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


@dataclass(frozen=True, slots=True)
class TraceRequest:
    """One recorded request; None marks what the trace did not record."""

    ts: float  # arrival, seconds
    prompt_tokens: int
    completion_tokens: int
    max_tokens: int = 0  # 0: completion_tokens
    privacy: Privacy | None = None
    tenant: str | None = None
    latency_slo_ms: int | None = None
    profile: str = ""
    model: str = ""
    messages: int = 1  # how many messages the request carried (request logs record it)
    ttft_ms: float | None = None  # as the real run measured them (request logs, served rows)
    total_ms: float | None = None


class TraceError(ValueError):
    """A trace file or a ratio option is malformed; the message says where."""


def _azure_seconds(stamp: str, days: dict[str, int]) -> float:
    """'2023-11-16 18:15:46.6805900' -> seconds since the epoch (any number of decimals)."""
    date, _, clock = stamp.strip().partition(" ")
    day = days.get(date)
    if day is None:
        day = days[date] = dt.date.fromisoformat(date).toordinal() - _EPOCH_ORDINAL
    h, m, s = clock.split(":")
    return day * 86400 + int(h) * 3600 + int(m) * 60 + float(s)


def load_azure_csv(path: str | os.PathLike[str]) -> list[TraceRequest]:
    """Reads an Azure LLM inference trace (TIMESTAMP, ContextTokens, GeneratedTokens)."""
    out: list[TraceRequest] = []
    days: dict[str, int] = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"} - set(reader.fieldnames or ())
        if missing:
            raise TraceError(f"{path}: missing columns {', '.join(sorted(missing))}")
        for row in reader:
            try:
                ts = _azure_seconds(row["TIMESTAMP"], days)
                prompt, generated = int(row["ContextTokens"]), int(row["GeneratedTokens"])
            except (ValueError, TypeError, AttributeError) as exc:
                raise TraceError(f"{path}:{reader.line_num}: {exc}") from None
            out.append(TraceRequest(ts, prompt, generated))
    return out


def _privacy(value: object) -> Privacy:
    if not isinstance(value, str) or value.upper() not in Privacy.__members__:
        raise ValueError(f"unknown privacy class {value!r}")
    return Privacy[value.upper()]


def load_request_log(path: str | os.PathLike[str]) -> list[TraceRequest]:
    """Reads the router's JSONL request log (schema in the module docstring)."""
    out: list[TraceRequest] = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                o = json.loads(line)
                privacy, slo = o.get("privacy"), o.get("latency_slo_ms")
                completion, max_tokens = int(o["completion_tokens"]), int(o.get("max_tokens") or 0)
                if not completion and o.get("status", "OK") != "OK":
                    completion = max_tokens
                out.append(
                    TraceRequest(
                        ts=float(o["ts"]),
                        prompt_tokens=int(o["prompt_tokens"]),
                        completion_tokens=completion,
                        max_tokens=max_tokens,
                        privacy=None if privacy is None else _privacy(privacy),
                        tenant=o.get("tenant"),
                        latency_slo_ms=None if slo is None else int(slo),
                        profile=str(o.get("profile") or ""),
                        model=str(o.get("model") or ""),
                        messages=int(o.get("messages") or 1),
                        **_recorded_times(o),
                    )
                )
            except KeyError as exc:
                raise TraceError(f"{path}:{n}: missing field {exc.args[0]!r}") from None
            except (ValueError, TypeError, AttributeError) as exc:
                raise TraceError(f"{path}:{n}: {exc}") from None
    return out


def _recorded_times(o: dict) -> dict[str, float]:
    """The TTFT and total time a served row recorded, for calibrated replays."""
    if o.get("status", "OK") != "OK":
        return {}
    ttft, total = o.get("ttft_ms"), o.get("total_ms")
    if not all(isinstance(v, int | float) and v > 0 for v in (ttft, total)):
        return {}
    return {"ttft_ms": float(ttft), "total_ms": float(total)}


def load_trace(path: str | os.PathLike[str]) -> list[TraceRequest]:
    """Reads either format: JSONL when the first non-blank character is '{' or '#'."""
    with open(path) as f:
        head = f.read(4096).lstrip()
    if head.startswith(("{", "#")):
        return load_request_log(path)
    return load_azure_csv(path)


def shape(
    requests: Iterable[TraceRequest],
    *,
    limit: int | None = None,
    speedup: float = 1.0,
    max_tokens: int | None = None,
) -> list[TraceRequest]:
    """Sorts by arrival (stable), rebases time to start at 0, keeps the first `limit`, divides
    inter-arrival times by `speedup`, and with `max_tokens` makes every request ask for that many
    (completion capped at it)."""
    if speedup <= 0:
        raise TraceError(f"speedup must be > 0, got {speedup}")
    ordered = sorted(requests, key=lambda r: r.ts)
    if limit is not None:
        ordered = ordered[: max(0, limit)]
    if not ordered:
        return []
    start = ordered[0].ts
    out = []
    for r in ordered:
        r = replace(r, ts=(r.ts - start) / speedup)
        if max_tokens is not None:
            r = replace(
                r, max_tokens=max_tokens, completion_tokens=min(r.completion_tokens, max_tokens)
            )
        out.append(r)
    return out


def load_traces(
    paths: Sequence[str | os.PathLike[str]],
    *,
    limit: int | None = None,
    speedup: float = 1.0,
    max_tokens: int | None = None,
) -> list[TraceRequest]:
    """Loads and merges traces by arrival time (absolute timestamps), then `shape`s them."""
    merged: list[TraceRequest] = []
    for path in paths:
        merged.extend(load_trace(path))
    return shape(merged, limit=limit, speedup=speedup, max_tokens=max_tokens)


def parse_privacy_ratios(text: str) -> dict[Privacy, float]:
    """'PUBLIC=0.6,RESTRICTED=0.05' -> {Privacy.PUBLIC: 0.6, ...}; shares must sum to <= 1."""
    out: dict[Privacy, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, share = part.partition("=")
        try:
            if not sep:
                raise ValueError("expected CLASS=SHARE")
            out[_privacy(name.strip())] = _share(share)
        except ValueError as exc:
            raise TraceError(f"--privacy {part!r}: {exc}") from None
    _check_total(out.values(), "--privacy")
    return out


def parse_slo_ratios(text: str) -> list[tuple[int, float]]:
    """'500:0.5,2000:0.3' -> [(500, 0.5), (2000, 0.3)]: that share gets that TTFT SLO (ms)."""
    out: list[tuple[int, float]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        ms, sep, share = part.partition(":")
        try:
            if not sep or int(ms) <= 0:
                raise ValueError("expected MS:SHARE with MS > 0")
            out.append((int(ms), _share(share)))
        except ValueError as exc:
            raise TraceError(f"--slo-ms {part!r}: {exc}") from None
    _check_total((s for _, s in out), "--slo-ms")
    return out


def _share(text: str) -> float:
    share = float(text)
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share {share} is not within [0, 1]")
    return share


def _check_total(shares: Iterable[float], option: str) -> None:
    if (total := sum(shares)) > 1.0 + 1e-9:
        raise TraceError(f"{option}: shares sum to {total:g}, more than 1")


def _draw(rng: random.Random, table: Sequence[tuple[object, float]]) -> object | None:
    u, acc = rng.random(), 0.0
    for value, share in table:
        acc += share
        if u < acc:
            return value
    return None


def assign(
    requests: Sequence[TraceRequest],
    *,
    seed: int = 0,
    privacy: dict[Privacy, float] | None = None,
    slo: Sequence[tuple[int, float]] | None = None,
) -> list[TraceRequest]:
    """Fills missing privacy classes and SLOs by ratio, one seeded draw per request and field
    (separate RNG streams, so the privacy draws do not depend on the SLO option); a request that
    the remainder share falls on stays unassigned. Recorded values are kept."""
    p_rng, s_rng = random.Random(f"privacy:{seed}"), random.Random(f"slo:{seed}")
    p_table = sorted((privacy or {}).items())
    out = []
    for r in requests:
        if p_table and r.privacy is None:
            r = replace(r, privacy=_draw(p_rng, p_table))  # type: ignore[arg-type]
        if slo and r.latency_slo_ms is None:
            r = replace(r, latency_slo_ms=_draw(s_rng, slo))  # type: ignore[arg-type]
        out.append(r)
    return out


def to_request(index: int, r: TraceRequest, config: Config) -> Request:
    """The router Request a trace row stands for (no content; request_id = its index), after the
    checks the live router makes before placement (INVALID_ARGUMENT when one fails)."""
    limits, defaults = config.limits, config.defaults
    max_tokens = r.max_tokens or r.completion_tokens or defaults.max_tokens
    if max_tokens > limits.max_tokens:
        raise InvalidArgument("max_tokens", f"{max_tokens} exceeds the limit {limits.max_tokens}")
    if r.model and not any(r.model in (c.model, *c.aliases) for c in config.backends.values()):
        raise InvalidArgument("model", f"unknown model {r.model!r}")
    if not 1 <= r.messages <= limits.max_messages:
        raise InvalidArgument("messages", f"{r.messages} messages (1 to {limits.max_messages})")
    largest = max(c.context_window for c in config.backends.values())
    if max_tokens >= largest or r.prompt_tokens + max_tokens > largest:
        raise InvalidArgument("messages", f"does not fit any context window (largest {largest})")
    return Request(
        str(index),
        r.tenant or "default",
        (ChatMessage("user", ""),) * r.messages,  # no content: only the count is replayed
        max_tokens,
        defaults.temperature,
        model=r.model,
        privacy=r.privacy or Privacy.UNSPECIFIED,
        latency_slo_ms=r.latency_slo_ms or 0,
        profile=r.profile,
    )


def add_trace_arguments(parser: argparse.ArgumentParser) -> None:
    """The trace options of `tokenrouter replay`."""
    add = parser.add_argument
    add(
        "--trace",
        action="append",
        required=True,
        metavar="FILE",
        help="Azure CSV or JSONL; repeat to merge",
    )
    add("--seed", type=int, default=0, help="seed for the ratio assignments")
    add("--privacy", default="", help="e.g. PUBLIC=0.6,INTERNAL=0.2,RESTRICTED=0.05")
    add("--slo-ms", default="", help="e.g. 500:0.5 (half the requests: 500 ms TTFT SLO)")
    add("--limit", type=int, help="replay the first N requests")
    add("--speedup", type=float, default=1.0, help="divide inter-arrival times by X")
    add("--max-tokens", type=int, help="every request asks for N tokens (output capped at N)")


def trace_from_arguments(
    args: argparse.Namespace,
) -> tuple[list[TraceRequest], dict[Privacy, float], list[tuple[int, float]]]:
    """The shaped requests and the ratio options; raises TraceError or OSError."""
    requests = load_traces(
        args.trace, limit=args.limit, speedup=args.speedup, max_tokens=args.max_tokens
    )
    return requests, parse_privacy_ratios(args.privacy), parse_slo_ratios(args.slo_ms)
