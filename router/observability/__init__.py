"""Observability: the Prometheus metrics of a router (router/observability/metrics.py) and the
state read at scrape time (router/observability/state.py)."""

from router.observability.metrics import Metrics

__all__ = ["Metrics"]
