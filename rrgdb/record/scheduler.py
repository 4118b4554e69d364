"""Scheduler: lets at most one thread of each process run user code at a time, so that
threads sharing memory interleave only at points replay can reproduce.

A thread gives up its process's turn when it enters the kernel (a syscall, its exit) and
asks for it back when it is about to return to user space. Threads that ask while another
one runs wait in order. A thread that keeps the turn too long while others wait is
preempted by the recorder (which records where, see PreemptFrame).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

PREEMPT_AFTER = 0.05  # seconds a thread may run user code while others wait


@dataclass
class _Process:
    running: int = 0  # tid holding the turn, 0 if none
    since: float = 0.0
    waiting: deque[int] = field(default_factory=deque)


class Scheduler:
    """Turn-taking between the threads of each process."""

    def __init__(self) -> None:
        self._processes: dict[int, _Process] = {}

    def running(self, tgid: int) -> int:
        """The thread of tgid that runs user code now (0: none)."""
        process = self._processes.get(tgid)
        return process.running if process else 0

    def ask(self, tgid: int, tid: int) -> bool:
        """tid wants to run user code: True if it may now, else it waits its turn."""
        process = self._processes.setdefault(tgid, _Process())
        if process.running in (0, tid):
            process.running = tid
            process.since = time.monotonic()
            return True
        self.queue(tgid, tid)
        return False

    def queue(self, tgid: int, tid: int) -> None:
        """tid waits for its turn."""
        process = self._processes.setdefault(tgid, _Process())
        if tid not in process.waiting and process.running != tid:
            process.waiting.append(tid)

    def release(self, tgid: int, tid: int) -> None:
        """tid enters the kernel, exits or is preempted: it no longer runs user code."""
        process = self._processes.get(tgid)
        if process is None:
            return
        if tid in process.waiting:
            process.waiting.remove(tid)
        if process.running == tid:
            process.running = 0
        if not process.running and not process.waiting:
            # nothing to remember: the next ask starts afresh (keeps the scans below
            # proportional to the live processes, not to every process ever seen)
            del self._processes[tgid]

    def handoff(self, tgid: int) -> int:
        """Gives a free turn to the first waiting thread; returns it (0: none)."""
        process = self._processes.get(tgid)
        if process is None or process.running or not process.waiting:
            return 0
        process.running = process.waiting.popleft()
        process.since = time.monotonic()
        return process.running

    def holding_up(self, busy: set[int]) -> list[int]:
        """Threads holding the turn while others of their process wait for it (or while
        the recorder holds back stops of their process, tgids in busy)."""
        return [p.running for p in self._holders(busy)]

    def overdue(self, busy: set[int]) -> list[int]:
        """Those of holding_up(busy) that have held the turn too long."""
        now = time.monotonic()
        return [p.running for p in self._holders(busy) if now - p.since > PREEMPT_AFTER]

    def _holders(self, busy: set[int]) -> list[_Process]:
        return [p for tgid, p in self._processes.items()
                if p.running and (p.waiting or tgid in busy)]

    def contended(self) -> bool:
        """Whether some thread waits for its turn (the recorder must then watch the time)."""
        return any(p.waiting for p in self._processes.values())
