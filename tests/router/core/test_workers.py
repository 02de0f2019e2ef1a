"""The cores one router process may use by default, from the worker count in the environment."""

from __future__ import annotations

import os

from router.core.workers import WORKERS_ENV, cpu_share, worker_count


def test_without_workers_a_process_has_all_the_cores(monkeypatch):
    """With no worker count set, one process and all the cores."""
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert worker_count() == 1 and cpu_share() == (os.cpu_count() or 1)


def test_workers_share_the_cores_at_least_one_each(monkeypatch):
    """N workers get the cores over N each, never fewer than one; junk and 0 count as one."""
    cores = os.cpu_count() or 1
    monkeypatch.setenv(WORKERS_ENV, "2")
    assert worker_count() == 2 and cpu_share() == max(1, cores // 2)
    monkeypatch.setenv(WORKERS_ENV, str(cores * 4))
    assert cpu_share() == 1
    for junk in ("0", "-3", "two", ""):
        monkeypatch.setenv(WORKERS_ENV, junk)
        assert worker_count() == 1, junk
