"""Reverse-execution benchmark (run on demand): reverse-stepi latency, a reverse
continue to a watchpoint about one second of execution back, and the cost of a checkpoint
of a 100 MB process. Uses the engine's ReplayTimeline directly.

    python bench/reverse.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rrgdb.kernel.breakpoints import WatchKind, Watchpoint
from rrgdb.timeline.timeline import ReplayTimeline

PROGRAM = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
volatile long slot;
int main(void) {
    char *big = malloc(100 << 20);
    memset(big, 1, 100 << 20);            /* a 100 MB process */
    slot = 1;                              /* the write to find */
    volatile unsigned long x = 0;
    for (unsigned long i = 0; i < 400000000UL; i++) x += i;   /* ~1 s, no syscalls */
    printf("%lu %d\n", (unsigned long)x, big[12345]);
    return 0;
}
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "prog.c").write_text(PROGRAM)
        subprocess.run(["gcc", "-O1", "-o", work / "prog", work / "prog.c"], check=True)
        subprocess.run([sys.executable, "-m", "rrgdb", "record", "-o", work / "trace",
                        work / "prog"], check=True, stdout=subprocess.DEVNULL)
        timeline = ReplayTimeline(work / "trace", echo=None)
        try:
            timeline.start()
            assert timeline.forward().kind == "end"
            slot = _symbol(work / "prog", "slot")
            timeline.add_watchpoint(Watchpoint(WatchKind.WRITE, slot, 8))
            start = time.perf_counter()
            outcome = timeline.reverse_continue()
            watch_s = time.perf_counter() - start
            timeline.remove_watchpoint(Watchpoint(WatchKind.WRITE, slot, 8))
            start = time.perf_counter()
            timeline.user_checkpoint()  # here the process holds its 100 MB
            checkpoint_ms = (time.perf_counter() - start) * 1000
            times = []
            for _ in range(10):
                start = time.perf_counter()
                timeline.reverse_stepi()
                times.append((time.perf_counter() - start) * 1000)
        finally:
            timeline.close()
    print(f"checkpoint of a ~100 MB process: {checkpoint_ms:.1f} ms")
    print(f"reverse-stepi: median {statistics.median(times):.1f} ms "
          f"(first {times[0]:.1f} ms, then cached window)")
    print(f"reverse-continue to a watchpoint ~1 s back: {watch_s:.2f} s ({outcome.kind})")
    return 0


def _symbol(binary: Path, name: str) -> int:
    out = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts[-1] == name:
            return 0x555555554000 + int(parts[0], 16)
    raise SystemExit(f"{name} not found")


if __name__ == "__main__":
    raise SystemExit(main())
