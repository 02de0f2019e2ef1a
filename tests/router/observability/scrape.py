"""Reading a router's metrics as Prometheus would: render the exposition, parse it back."""

from __future__ import annotations

from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def samples(router: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of the router's exposition: (sample name, its labels) -> value."""
    body, _ = router.metrics.render()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(router: Any, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples(router).items() if n == name and wanted <= ls)


def label_values(router: Any, label: str) -> set[str]:
    """Every value `label` takes in the exposition."""
    return {v for (_, ls) in samples(router) for k, v in ls if k == label}
