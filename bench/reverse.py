"""Reverse-execution benchmark (run on demand): reverse-stepi latency, a reverse
continue to a watchpoint about one second of execution back, the cost of a checkpoint
of a 100 MB process, and reverse-stepi back through a loop of 10^5 iterations. Uses the
engine's ReplayTimeline directly.

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

LOOP_PROGRAM = r"""
volatile long sink;
__attribute__((noinline)) void after_loop(long s) { sink = s; }
int main(void) {
    long s = 0;
    for (long i = 0; i < 100000; i++) s += i * 3;   /* no syscalls */
    after_loop(s);
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
        loop_times = _loop_stepping(work)
    print(f"checkpoint of a ~100 MB process: {checkpoint_ms:.1f} ms")
    print(f"reverse-stepi: median {statistics.median(times):.1f} ms "
          f"(first {times[0]:.1f} ms, then cached window)")
    print(f"reverse-continue to a watchpoint ~1 s back: {watch_s:.2f} s ({outcome.kind})")
    print(f"reverse-stepi x{len(loop_times)} back from a 10^5-iteration loop: first "
          f"{loop_times[0]:.0f} ms, then median {statistics.median(loop_times[1:]):.1f} ms, "
          f"{sum(t > 1000 for t in loop_times)} of them over 1 s (a new window's counting "
          f"replay), max {max(loop_times):.0f} ms")
    return 0


def _loop_stepping(work: Path) -> list[float]:
    """Milliseconds of each of 200 reverse-stepis from the call after LOOP_PROGRAM's loop."""
    (work / "loop.c").write_text(LOOP_PROGRAM)
    subprocess.run(["gcc", "-O0", "-o", work / "loop", work / "loop.c"], check=True)
    subprocess.run([sys.executable, "-m", "rrgdb", "record", "-o", work / "loop-trace",
                    work / "loop"], check=True, stdout=subprocess.DEVNULL)
    timeline = ReplayTimeline(work / "loop-trace", echo=None)
    times = []
    try:
        timeline.start()
        timeline.add_breakpoint(_symbol(work / "loop", "after_loop"))
        assert timeline.forward().kind == "breakpoint"
        for _ in range(200):
            start = time.perf_counter()
            timeline.reverse_stepi()
            times.append((time.perf_counter() - start) * 1000)
    finally:
        timeline.close()
    return times


def _symbol(binary: Path, name: str) -> int:
    out = subprocess.run(["nm", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if parts[-1] == name:
            return 0x555555554000 + int(parts[0], 16)
    raise SystemExit(f"{name} not found")


if __name__ == "__main__":
    raise SystemExit(main())
