"""Renders a RouteDecision as a readable table: every candidate's scores, or why it was rejected,
and what decided its estimates ("model": the learned predictors; else "analytic", with why the
predictors did not decide when they are configured)."""

from __future__ import annotations

from router.api import router_pb2 as pb


def format_decision(d: pb.RouteDecision) -> str:
    """The decision headline, then one row per backend (chosen first marked with '*')."""
    privacy = pb.Privacy.Name(d.privacy)
    detected = f" (detected: {', '.join(d.detected)})" if d.detected else ""
    lines = [
        f"request {d.request_id}: -> {d.backend} ({pb.Tier.Name(d.tier).lower()}, model {d.model})",
        f"profile {d.profile}, privacy {privacy}{detected}, solver {d.solver}, "
        f"batch of {d.batch_size}, decided in {d.decision_us} us",
        f"estimated cost ${d.estimated_cost_usd:.6f}, TTFT {d.estimated_ttft_ms:.1f} ms",
        "",
    ]
    policies = sorted({name for c in d.candidates for name in c.scores})
    header = [
        "",
        "backend",
        *policies,
        "total",
        "est. cost $",
        "est. TTFT ms",
        "estimate",
        "excluded by",
    ]
    rows = [header]
    for c in d.candidates:
        mark = "*" if c.backend == d.backend else ""
        if c.feasible:
            scores = [f"{c.scores[p]:.3f}" if p in c.scores else "-" for p in policies]
            total, excluded = f"{c.total:.3f}", ""
        else:
            scores, total = ["-"] * len(policies), "-"
            excluded = f"{c.rejected_by}: {c.reason}"
        rows.append(
            [
                mark,
                c.backend,
                *scores,
                total,
                f"{c.estimated_cost_usd:.6f}",
                f"{c.estimated_ttft_ms:.1f}",
                c.estimator or "analytic",
                excluded,
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for r in rows:
        cells = [cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, r[-1]]).rstrip())
    return "\n".join(lines)
