"""Observability: tracing (tracing.py, tracing_setup.py) and metrics, each optional."""
