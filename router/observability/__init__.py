"""Observability: tracing (tracing.py, tracing_setup.py), each optional, and the Prometheus
metrics of a router (metrics.py, with the state read at scrape time in state.py and bounded
label values in labels.py)."""

from router.observability.metrics import Metrics

__all__ = ["Metrics"]
