"""Offline and command-line tools: the CLI, explain, the trace replay and its report, logging
set-up."""
