"""A real gdb debugs a real replay forward, over ``rrgdb replay -s`` (issue 3).

The debuggee is tests/programs/gdb_debuggee.c, compiled by the session at -O0 -g (one
test also at -O2 -g) and recorded once per module. Every test starts its own server,
ends it by pid, and groups several checks into one ``gdb -batch`` session (each costs
about a second plus the replay). Lines are looked up by their ``L:name`` markers.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gdb_helpers import GdbScript, Recording, record_program, replay_server, requires_gdb

pytestmark = requires_gdb

EXIT_STATUS = 42


@pytest.fixture(scope="module")
def debuggee(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    rec = record_program("gdb_debuggee", "O0", tmp_path_factory.mktemp("gdb-forward"))
    assert rec.status == EXIT_STATUS, rec
    return rec


@pytest.fixture(scope="module")
def debuggee_o2(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    rec = record_program("gdb_debuggee", "O2", tmp_path_factory.mktemp("gdb-forward-o2"))
    assert rec.status == EXIT_STATUS, rec
    return rec


def test_break_step_next_finish_until_and_print(debuggee: Recording, tmp_path: Path) -> None:
    L = debuggee.line
    s = GdbScript()
    s("break square")
    hit = s("continue")
    bt = s("backtrace")
    args = s("info args")
    nxt = s("next")
    result = s("print result")
    fin = s("finish")
    s("delete")
    s(f"break gdb_debuggee.c:{L('loop-add')}")
    at_add = s("continue")
    total = s("print total")
    i = s("print i")
    counter = s("print counter")
    origin = s("print origin")
    origin_name = s("print origin.name")
    values = s("print values")
    ptype = s("ptype struct point")
    step = s("step")
    delta = s("print delta")
    fin2 = s("finish")
    s("delete")
    until = s(f"until {L('printf-total')}")
    total_after = s("print total")
    counter_after = s("print counter")
    glob = s("print &counter")
    with replay_server(debuggee, tmp_path) as server:
        t = s.run_remote(server)

    t.expect(hit, "Breakpoint 1, square (n=1)")
    t.expect_line(hit, L("square-body"))
    t.expect(bt, "#0  square (n=1)")
    t.expect_re(bt, rf"#1  0x[0-9a-f]+ in main \(\) at \S*gdb_debuggee\.c:{L('loop-call')}")
    t.expect(args, "n = 1")
    t.expect_line(nxt, L("square-return"))
    assert t.value(result) == "1", t.context(result)
    t.expect(fin, "Value returned is $", "= 1")
    t.expect_re(fin, rf"in main \(\) at \S*gdb_debuggee\.c:{L('loop-call')}")
    t.expect(at_add, "Breakpoint 2, main () at")
    t.expect_line(at_add, L("loop-add"))
    assert t.value(total) == "1", t.context(total)
    assert t.value(i) == "1", t.context(i)
    assert t.value(counter) == "0", t.context(counter)
    assert re.fullmatch(r'\{x = 3, y = 4, name = 0x[0-9a-f]+ "origin"\}', t.value(origin)), (
        t.context(origin)
    )
    assert t.value(origin_name).endswith('"origin"'), t.context(origin_name)
    assert t.value(values) == "{5, 3, 9, 1, 7}", t.context(values)
    t.expect(ptype, "type = struct point {", "int x;", "const char *name;")
    t.expect(step, "add_to_counter (delta=1)")
    t.expect_line(step, L("counter-store"))
    assert t.value(delta) == "1", t.context(delta)
    t.expect(fin2, "Value returned is $", "= 1")
    t.expect_line(until, L("printf-total"))
    assert t.value(total_after) == "30", t.context(total_after)
    assert t.value(counter_after) == "10", t.context(counter_after)
    t.expect(glob, "<counter>")


def test_libc_callback_backtrace_shared_library_breakpoint_registers_memory_find(
    debuggee: Recording, tmp_path: Path
) -> None:
    L = debuggee.line
    s = GdbScript()
    s("break compare_ints")
    cmp_hit = s("continue")
    cmp_bt = s("backtrace")
    s("delete")
    s("break write")
    write_hit = s("continue")
    write_bt = s("backtrace")
    libs = s("info sharedlibrary")
    rip = s("info registers rip")
    pc = s("print/x $pc")
    marker = s("print heap_marker")
    xb = s("x/16xb heap_marker")
    find_exact = s('find heap_marker, +64, "NEEDLE-in-the-heap"')
    find_heap = s("find /b heap_marker - 0x200, +0x4000, 0x4e, 0x45, 0x45, 0x44, 0x4c, 0x45")
    find_none = s('find heap_marker, +64, "not-in-the-heap"')
    with replay_server(debuggee, tmp_path) as server:
        t = s.run_remote(server)

    t.expect(cmp_hit, "Breakpoint 1, compare_ints (a=0x")
    t.expect_line(cmp_hit, L("compare"))
    t.expect(cmp_bt, "#0  compare_ints (")
    t.expect_re(cmp_bt, r"qsort")  # msort_with_tmp / __GI___qsort_r, from libc's debug info
    t.expect_re(cmp_bt, rf"in main \(\) at \S*gdb_debuggee\.c:{L('qsort')}")
    # the first write after qsort is printf("sorted …")'s
    # `break write` may have two locations: libc's and the syscall buffer's wrapper
    t.expect_re(write_hit, r"Breakpoint 2(\.\d)?, (__GI___libc_write|__libc_write|write) \(fd=1")
    t.expect_re(write_bt, r"printf")
    t.expect_re(write_bt, rf"in main \(\) at \S*gdb_debuggee\.c:{L('printf-sorted')}")
    t.expect(libs, "libc.so.6")
    t.expect_re(rip, r"^rip +0x[0-9a-f]+ +0x[0-9a-f]+ <(__GI___libc_write|__libc_write|write)")
    rip_value = t.expect_re(rip, r"^rip +(0x[0-9a-f]+)").group(1)
    assert t.value(pc) == rip_value, t.context(pc)
    heap_addr = t.expect_re(marker, r'= (0x[0-9a-f]+) "NEEDLE-in-the-heap"').group(1)
    t.expect(xb, "0x4e\t0x45\t0x45\t0x44\t0x4c\t0x45\t0x2d\t0x69", "0x6e\t0x2d\t0x74\t0x68")
    t.expect(find_exact, "1 pattern found.")
    t.expect_re(find_exact, rf"^{heap_addr}$")
    t.expect(find_heap, "1 pattern found.")
    t.expect_re(find_heap, rf"^{heap_addr}$")
    t.expect(find_none, "Pattern not found.")


def test_watchpoints_write_read_access(debuggee: Recording, tmp_path: Path) -> None:
    L = debuggee.line
    s = GdbScript()
    s("rwatch counter")
    rhit = s("continue")
    s("delete")
    s("awatch counter")
    ahit = s("continue")
    ahit2 = s("continue")
    s("delete")
    s("watch counter")
    whit = s("continue")
    whit2 = s("continue")
    s("delete")
    s("watch -l origin.x")
    lhit = s("continue")
    s("delete")
    end = s("continue")
    with replay_server(debuggee, tmp_path) as server:
        t = s.run_remote(server)

    t.expect(rhit, "Hardware read watchpoint 1: counter", "Value = 0")
    t.expect(rhit, "add_to_counter (delta=1)")
    t.expect(ahit, "Hardware access (read/write) watchpoint 2: counter")
    t.expect(ahit, "add_to_counter (delta=1)")
    t.expect_re(ahit2, r"Hardware access \(read/write\) watchpoint 2: counter")
    t.expect_re(ahit2, r"New value = 1|Value = 1")
    t.expect(whit, "Hardware watchpoint 3: counter", "Old value = 1", "New value = 3")
    t.expect(whit, "add_to_counter (delta=2)")
    t.expect(whit2, "Old value = 3", "New value = 6", "add_to_counter (delta=3)")
    t.expect(lhit, "Hardware watchpoint 4: -location origin.x", "Old value = 3", "New value = 30")
    t.expect_re(lhit, rf"main \(\) at \S*gdb_debuggee\.c:{L('qsort')}")
    t.expect(end, "Program received signal SIGKILL")


def test_continue_to_the_end_output_while_debugging_and_exit_code(
    debuggee: Recording, tmp_path: Path
) -> None:
    """Output appears as the replay runs; the end is a SIGKILL stop, then the exit."""
    L = debuggee.line
    lines = debuggee.stdout.splitlines(keepends=True)
    assert lines[0] == b"total 30 counter 10\n" and lines[-1] == b"done\n", debuggee.stdout
    with replay_server(debuggee, tmp_path) as server:
        address = server.address
        first = GdbScript()
        first(f"break gdb_debuggee.c:{L('after-printf')}")
        stop = first("continue")
        t1 = first.run_remote(address)
        t1.expect_line(stop, L("after-printf"))
        # gdb has detached; the replay printed what the program wrote up to the stop
        assert server.wait_for_stdout(lines[0]) == lines[0]

        s = GdbScript()
        s(f"break gdb_debuggee.c:{L('write')}")
        at_write = s("continue")
        s("delete")
        killed = s("continue")
        regs = s("info registers rip")
        exited = s("continue")
        again = s("info registers rip")
        t = s.run_remote(address)
        out = server.stdout()
    t.expect_line(at_write, L("write"))
    t.expect(killed, "Program received signal SIGKILL, Killed.")
    t.expect_re(regs, r"^rip +0x[0-9a-f]+")
    t.expect(exited, f"exited with code 0{EXIT_STATUS:o}]")
    t.expect(again, "The program has no registers now.")
    # the first session's output, then the whole recorded output again in the second
    assert out == lines[0] + debuggee.stdout, out


def test_kill_then_reconnect_to_the_same_server(debuggee: Recording, tmp_path: Path) -> None:
    with replay_server(debuggee, tmp_path) as server:
        s = GdbScript()
        s("break square")
        hit = s("continue")
        killed = s("kill")
        gone = s("info registers rip")
        s(f"target extended-remote {server.address}")
        again = s("continue")
        args = s("info args")
        t = s.run_remote(server)

        second = GdbScript()
        second("break add_to_counter")
        hit2 = second("continue")
        t2 = second.run_remote(server)
        alive = server.alive()
    t.expect(hit, "Breakpoint 1, square (n=1)")
    t.expect_re(killed, r"\[Inferior 1 \(process \d+\) killed\]")
    t.expect(gone, "The program has no registers now.")
    t.expect(again, "Breakpoint 1, square (n=1)")
    t.expect(args, "n = 1")
    t2.expect(hit2, "Breakpoint 1, add_to_counter (delta=1)")
    assert alive, server.stderr()


def test_inferior_calls_run_in_a_diversion_and_leave_the_replay_untouched(
    debuggee: Recording, tmp_path: Path
) -> None:
    """`print f(3)` runs f live in a forked copy of the replay; the copy is thrown away when
    gdb restores the registers, so a call that changes a global leaves the replay as it was."""
    s = GdbScript()
    s("break add_to_counter")
    s("continue")
    s("continue")
    pc_before = s("print/x $pc")
    sp_before = s("print/x $sp")
    call = s("print square(3)")
    s("delete")
    call2 = s("call add_to_counter(100)")
    pc_after = s("print/x $pc")
    sp_after = s("print/x $sp")
    counter = s("print counter")
    args = s("info args")
    bt = s("backtrace")
    s("break add_to_counter")
    nxt = s("continue")
    counter2 = s("print counter")
    s("delete")
    end = s("continue")
    exited = s("continue")
    with replay_server(debuggee, tmp_path) as server:
        t = s.run_remote(server)
        out = server.stdout()
    t.expect(call, "= 9")
    assert t[call2].strip(), t.context(call2)
    assert t.value(pc_after) == t.value(pc_before), t.context(pc_after)
    assert t.value(sp_after) == t.value(sp_before), t.context(sp_after)
    assert t.value(counter) == "1", t.context(counter)
    t.expect(args, "delta = 2")
    t.expect_re(bt, r"#1  0x[0-9a-f]+ in main \(\)")
    t.expect(nxt, "Breakpoint 2, add_to_counter (delta=3)")
    assert t.value(counter2) == "3", t.context(counter2)
    t.expect(end, "Program received signal SIGKILL")
    t.expect(exited, f"exited with code 0{EXIT_STATUS:o}]")
    assert out == debuggee.stdout


def test_optimised_build(debuggee_o2: Recording, tmp_path: Path) -> None:
    L = debuggee_o2.line
    s = GdbScript()
    s("break add_to_counter")
    hit = s("continue")
    hit2 = s("continue")
    bt = s("backtrace")
    s("delete")
    s("watch counter")
    wat = s("continue")
    s("delete")
    s("break factorial")
    fact = s("continue")
    s("delete")
    end = s("continue")
    exited = s("continue")
    with replay_server(debuggee_o2, tmp_path) as server:
        t = s.run_remote(server)
    # at -O2 gdb shows entry values: add_to_counter (delta=delta@entry=1)
    t.expect_re(hit, r"Breakpoint 1, add_to_counter \(delta=(delta@entry=)?1\)")
    t.expect_re(hit2, r"add_to_counter \(delta=(delta@entry=)?2\)")
    t.expect_re(bt, rf"#1  0x[0-9a-f]+ in main \(\) at \S*gdb_debuggee\.c:{L('loop-add')}")
    # the breakpoint is before the store of the second call: that store is the first hit
    t.expect(wat, "Old value = 1", "New value = 3")
    t.expect_re(fact, r"factorial \(n=(n@entry=)?5\)")
    t.expect_re(fact, rf"gdb_debuggee\.c:({L('factorial-test')}|{L('factorial-test') - 1})")
    t.expect(end, "Program received signal SIGKILL")
    t.expect(exited, f"exited with code 0{EXIT_STATUS:o}]")


def test_a_breakpoint_where_every_signal_is_blocked(tmp_path: Path) -> None:
    """The breakpoint's trap is a forced SIGTRAP, which the kernel unblocks: the replay
    blocks it again, so the program's real rt_sigprocmask reports the recorded mask."""
    recording = record_program("masked_breakpoint", "O0", tmp_path / "rec")
    assert recording.stdout == b"SIGTRAP blocked\n", recording.stdout
    s = GdbScript()
    s("break inside")
    hits = [s("continue") for _ in range(3)]
    s("delete")
    end = s("continue")
    with replay_server(recording, tmp_path) as server:
        t = s.run_remote(server)
        out = server.stdout()
    for round_, hit in enumerate(hits):
        t.expect(hit, f"Breakpoint 1, inside (round={round_})")
    t.expect(end, "Program received signal SIGKILL")
    assert out == recording.stdout, out
