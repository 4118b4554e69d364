"""gdb at signal handlers (fork_exec_wait's SIGCHLD handler): a breakpoint on a handler's
first instruction is hit when the signal is delivered, forwards and backwards;
reverse-finish leaves the handler for the code the signal interrupted; and a breakpoint
there is hit when the handler returns to it (rt_sigreturn puts the thread on it, as the
delivery puts it on the handler's entry: the thread gets there without executing the
breakpoint's int3, and the replay reports the hit all the same)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gdb_helpers import GdbScript, Recording, record_program, replay_server, requires_gdb

pytestmark = requires_gdb


@pytest.fixture(scope="module")
def children(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    rec = record_program("fork_exec_wait", "O0", tmp_path_factory.mktemp("gdb-signals"))
    assert rec.status == 0 and b"SIGCHLD handled 2 times" in rec.stdout, rec
    return rec


def test_breakpoints_at_a_handler_and_where_it_returns(children: Recording,
                                                       tmp_path: Path) -> None:
    s = GdbScript()
    s("break *on_child")
    first = s("continue")
    at_entry = s("print $pc == (long) on_child")
    bt = s("bt 3")
    second = s("continue")
    done_second = s("print children_done")
    back = s("reverse-continue")
    done_first = s("print children_done")
    s("delete")
    s("frame 2")  # the code the signal interrupted
    s("break *$pc")
    returned = s("continue")
    done_after = s("print children_done")
    s("break on_child")
    s("reverse-continue")  # into the handler again, after its prologue
    left = s("reverse-finish")
    interrupted = s("bt 2")
    done_before = s("print children_done")
    s("delete")
    end = s("continue")
    with replay_server(children, tmp_path) as server:
        t = s.run_remote(server)
    t.expect_re(first, r"Breakpoint 1, .*on_child")
    assert t.value(at_entry) == "1", t.context(at_entry)
    t.expect(bt, "<signal handler called>")
    t.expect_re(second, r"Breakpoint 1, .*on_child")
    assert t.value(done_second) == "1", t.context(done_second)
    t.expect_re(back, r"Breakpoint 1, .*on_child")
    assert t.value(done_first) == "0", t.context(done_first)
    # the handler returns (rt_sigreturn) onto the breakpoint: a hit, once it has run
    t.expect_re(returned, r"Breakpoint 2, 0x[0-9a-f]+ in \S*wait4")
    assert t.value(done_after) == "1", t.context(done_after)
    assert "on_child" not in t[left], t.context(left)
    t.expect_re(interrupted, r"#1 .* in main \(\)")
    assert t.value(done_before) == "0", t.context(done_before)
    t.expect(end, "SIGKILL")
