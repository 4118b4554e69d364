"""Load: many gdb connections and many step/continue round trips against one server,
with steady memory and no leaked processes. Runs bench/load.py (the same code as the
on-demand benchmark) and checks its report.

Default: 50 connection cycles and 500 round trips. RRGDB_LOAD_FULL=1 runs the figures of
issue 8: 1000 cycles and 10 000 round trips (a few minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import REPO_ROOT, rrgdb_env

FULL = os.environ.get("RRGDB_LOAD_FULL") == "1"
CYCLES, ROUND_TRIPS = (1000, 10000) if FULL else (50, 500)
# Growth allowed between the warm-up and the end (allocator slack, caches that fill
# once); a per-connection leak of the replay's frames would be far above it.
RSS_GROWTH_LIMIT_KIB = 16 * 1024


def test_connections_and_round_trips_keep_memory_steady_and_leak_nothing() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "load.py"), "--cycles", str(CYCLES),
         "--round-trips", str(ROUND_TRIPS), "--json"],
        capture_output=True, env=rrgdb_env(), timeout=3000 if FULL else 300,
    )
    assert result.returncode in (0, 1), result.stderr.decode(errors="replace")
    report = json.loads(result.stdout)
    summary = json.dumps(report, indent=1)
    print(summary)  # shown with -s: the RSS figures
    assert report["error"] is None, summary
    # the first connection's replay is made before the server listens (server.py)
    assert report["children_before"] >= 1, summary
    assert report["children_while_connected"] >= 1, summary
    assert report["children_after_cycles"] == 0, summary
    assert report["children_after"] == 0, summary
    assert report["server_status"] == 0, summary
    assert report["server_tracebacks"] == 0, summary
    assert report["forward_steps"] + report["reverse_steps"] + report["continues"] \
        + report["restarts"] == ROUND_TRIPS, summary
    growth = report["rss_end_kib"] - report["rss_after_warmup_kib"]
    assert growth < RSS_GROWTH_LIMIT_KIB, summary
