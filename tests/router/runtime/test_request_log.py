"""The request log file shared by several writers (the workers of `serve --workers N`)."""

from __future__ import annotations

import json
import threading

from router.runtime.request_log import RequestLog


def test_writers_sharing_a_file_never_mix_their_lines(tmp_path):
    """Two logs appending long lines to one file at once leave only whole, parseable lines."""
    path = tmp_path / "requests.jsonl"
    logs = [RequestLog(path), RequestLog(path)]
    pad = "x" * 10_000  # longer than a file buffer: a line split in two writes would show

    def write(n: int) -> None:
        for i in range(400):
            logs[n].write({"writer": n, "i": i, "pad": pad})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for log in logs:
        log.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted((r["writer"], r["i"]) for r in records) == [
        (n, i) for n in range(2) for i in range(400)
    ]
