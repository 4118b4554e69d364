"""The recorder's Scheduler: one thread of a process runs user code at a time, and one of
all the processes that share memory; turns pass in order, and a process with no thread in
or waiting for a turn leaves nothing behind."""

from __future__ import annotations

from rrgdb.record.scheduler import Scheduler


def test_turns_pass_in_order_within_a_process_and_processes_do_not_wait() -> None:
    scheduler = Scheduler()
    assert scheduler.ask(100, 100)
    assert scheduler.ask(200, 200)  # another process runs alongside
    assert not scheduler.ask(100, 101)
    assert not scheduler.ask(100, 102)
    assert scheduler.contended() and scheduler.running(100) == 100
    assert scheduler.holding_up(set()) == [100]
    scheduler.release(100, 100)
    assert scheduler.handoff(set()) == [101]
    scheduler.release(100, 101)
    assert scheduler.handoff(set()) == [102]
    scheduler.release(100, 102)
    assert scheduler.handoff(set()) == [] and not scheduler.contended()


def test_processes_that_share_memory_take_turns() -> None:
    """Two sharing processes never run user code together; a third that shares nothing
    runs alongside; a process that exec'd runs alongside again."""
    scheduler = Scheduler()
    scheduler.share(100)
    scheduler.share(200)
    assert scheduler.ask(100, 100)
    assert scheduler.ask(300, 300)
    assert not scheduler.ask(200, 200)
    assert scheduler.holding_up(set()) == [100]
    scheduler.release(100, 100)
    assert scheduler.handoff(set()) == [200]
    assert not scheduler.ask(100, 101)  # its process's turn is free, the shared one is not
    scheduler.release(200, 200)
    assert scheduler.handoff({100}) == []  # the recorder holds its stops back for now
    assert scheduler.handoff(set()) == [101]
    scheduler.unshare(200)
    assert scheduler.ask(200, 200)


def test_a_process_without_turns_is_forgotten() -> None:
    """A shell loop runs thousands of short processes: the scheduler's scans (made at every
    stop) must cover the live ones only, or recording grows quadratically."""
    scheduler = Scheduler()
    for pid in range(1000, 3000):
        assert scheduler.ask(pid, pid)
        scheduler.release(pid, pid)
        assert scheduler.running(pid) == 0
    assert scheduler._turns == {} and not scheduler._waiting
    assert scheduler.ask(1000, 1000)  # a forgotten process asks afresh
