"""Scheduler: lets at most one thread of each process run user code at a time, and at
most one thread of all the processes that share memory with others, so that whatever
shares memory interleaves only at points replay can reproduce (replay runs one task at a
time, in the trace's order).

A thread gives up its turns when it enters the kernel (a syscall, its exit) and asks for
them back when it is about to return to user space; through the syscalls that change its
address space (mmap, munmap, ...) it keeps its process's turn (session.py,
ADDRESS_SPACE_SYSCALLS). Threads that ask while a turn they
need is held wait in order. A thread that keeps a turn too long while others wait is
preempted by the recorder (which records where, see PreemptFrame).

A process shares memory once it maps something MAP_SHARED (or attaches System V shared
memory), or is forked by one that does; it stops at exec, which gives it a new address
space. Processes that share nothing run alongside each other, as before.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

PREEMPT_AFTER = 0.05  # seconds a thread may run user code while others wait
SHARED = -1  # the key of the turn that processes sharing memory take together


@dataclass
class _Turn:
    running: int  # the tid holding it
    since: float


class Scheduler:
    """Turn-taking between the threads of each process, and between the processes that
    share memory."""

    def __init__(self) -> None:
        self._turns: dict[int, _Turn] = {}  # held turns only: by tgid, and SHARED
        self._waiting: deque[tuple[int, int]] = deque()  # (tgid, tid), in order of asking
        self._sharing: set[int] = set()  # tgids that take the SHARED turn too

    def share(self, tgid: int) -> None:
        """tgid now shares memory with other processes (from its next turn on)."""
        self._sharing.add(tgid)

    def unshare(self, tgid: int) -> None:
        """tgid exec'd or is gone: its memory is its own again."""
        self._sharing.discard(tgid)

    def sharing(self, tgid: int) -> bool:
        return tgid in self._sharing

    def running(self, tgid: int) -> int:
        """The thread of tgid that runs user code now (0: none)."""
        turn = self._turns.get(tgid)
        return turn.running if turn else 0

    def ask(self, tgid: int, tid: int) -> bool:
        """tid wants to run user code: True if it may now, else it waits its turn."""
        if self._free_for(tgid, tid):
            self._grant(tgid, tid)
            return True
        self.queue(tgid, tid)
        return False

    def queue(self, tgid: int, tid: int) -> None:
        """tid waits for the turns it lacks. It may hold one already: its process's turn,
        kept through an address-space syscall, while the SHARED turn that its process
        needs from that syscall's MAP_SHARED mapping on is someone else's."""
        if (tgid, tid) not in self._waiting and not self._holds_all(tgid, tid):
            self._waiting.append((tgid, tid))

    def release(self, tgid: int, tid: int) -> None:
        """tid enters the kernel, exits or is preempted: it no longer runs user code."""
        if (tgid, tid) in self._waiting:
            self._waiting.remove((tgid, tid))
        for key in (tgid, SHARED):
            turn = self._turns.get(key)
            if turn is not None and turn.running == tid:
                # nothing to remember: keeps the scans below proportional to the turns
                # held and the threads waiting, not to every process ever seen
                del self._turns[key]

    def handoff(self, held_back: set[int]) -> list[int]:
        """Gives the free turns to the waiting threads that need only those, in order
        (none of the processes in held_back); returns them."""
        granted = []
        for tgid, tid in list(self._waiting):
            if tgid not in held_back and self._free_for(tgid, tid):
                self._waiting.remove((tgid, tid))
                self._grant(tgid, tid)
                granted.append(tid)
        return granted

    def holding_up(self, busy: set[int]) -> list[int]:
        """Threads holding a turn that another thread waits for (or holding the turn of a
        process whose stops the recorder holds back, tgids in busy)."""
        return [turn.running for turn in self._blocking(busy)]

    def overdue(self, busy: set[int]) -> list[int]:
        """Those of holding_up(busy) that have held their turn too long."""
        now = time.monotonic()
        return [turn.running for turn in self._blocking(busy)
                if now - turn.since > PREEMPT_AFTER]

    def contended(self) -> bool:
        """Whether some thread waits for its turn (the recorder must then watch the time)."""
        return bool(self._waiting)

    def _keys(self, tgid: int) -> tuple[int, ...]:
        return (tgid, SHARED) if tgid in self._sharing else (tgid,)

    def _free_for(self, tgid: int, tid: int) -> bool:
        return all(key not in self._turns or self._turns[key].running == tid
                   for key in self._keys(tgid))

    def _holds_all(self, tgid: int, tid: int) -> bool:
        return all(key in self._turns and self._turns[key].running == tid
                   for key in self._keys(tgid))

    def _grant(self, tgid: int, tid: int) -> None:
        """Gives tid the turns of tgid. A thread that holds one already keeps it from when
        it got it: a trap in user code (rdtsc, cpuid) is no syscall and gives nothing up,
        and a thread that traps every few ms must still be preempted while others wait."""
        now = time.monotonic()
        for key in self._keys(tgid):
            turn = self._turns.get(key)
            if turn is None or turn.running != tid:
                self._turns[key] = _Turn(tid, now)

    def _blocking(self, busy: set[int]) -> list[_Turn]:
        blocking: dict[int, _Turn] = {}
        for tgid, tid in self._waiting:
            for key in self._keys(tgid):
                turn = self._turns.get(key)
                if turn is not None and turn.running != tid:
                    blocking[turn.running] = turn
        for tgid in busy:
            turn = self._turns.get(tgid)
            if turn is not None:
                blocking[turn.running] = turn
        return list(blocking.values())
