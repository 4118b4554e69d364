"""A real gdb runs a real replay backwards over ``rrgdb replay -s`` (issue 4).

Programs: tests/programs/gdb_debuggee.c (calls, a recursive function, a global written
four times, printf making write syscalls) and tests/programs/gdb_leak.c (the motivating
leak scenario), compiled by the session at -O0 -g (the leak scenario also at -O2 -g) and
recorded once per module. Reverse line stepping is compared with what gdb's own
``record full`` shows for the same binary run natively.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import run_rrgdb
from gdb_helpers import (
    GdbScript,
    Recording,
    Transcript,
    record_program,
    replay_server,
    requires_gdb,
)

pytestmark = requires_gdb

HISTORY_START = "No more reverse-execution history."


@pytest.fixture(scope="module")
def debuggee(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    rec = record_program("gdb_debuggee", "O0", tmp_path_factory.mktemp("gdb-reverse"))
    assert rec.status == 42, rec
    return rec


def _leak_recording(tmp_path_factory: pytest.TempPathFactory, variant: str) -> Recording:
    rec = record_program("gdb_leak", variant, tmp_path_factory.mktemp(f"gdb-leak-{variant}"))
    assert rec.status == 0, rec
    return rec


@pytest.fixture(scope="module", params=["O0", "O2"])
def leak(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Recording:
    return _leak_recording(tmp_path_factory, request.param)


def test_reverse_continue_walks_back_hit_by_hit(debuggee: Recording, tmp_path: Path) -> None:
    L = debuggee.line
    s = GdbScript()
    s("break add_to_counter")
    forward = [s("continue") for _ in range(4)]
    forward_counter = s("print counter")
    backward = []
    for _ in range(3):
        hit = s("reverse-continue")
        backward.append((hit, s("print counter"), s("backtrace")))
    start = s("reverse-continue")
    start_again = s("reverse-continue")
    again = s("continue")
    again_counter = s("print counter")
    again2 = s("continue")
    again2_args = s("info args")
    with replay_server(debuggee, tmp_path) as server:
        t = s.run_remote(server)

    for delta, index in enumerate(forward, start=1):
        t.expect(index, f"Breakpoint 1, add_to_counter (delta={delta})")
        t.expect_line(index, L("counter-store"))
    assert t.value(forward_counter) == "6", t.context(forward_counter)
    # counter before the store of each call: 0, 1, 3, 6
    for (hit, counter, bt), delta, before in zip(backward, (3, 2, 1), (3, 1, 0), strict=True):
        t.expect(hit, f"Breakpoint 1, add_to_counter (delta={delta})")
        t.expect_line(hit, L("counter-store"))
        assert t.value(counter) == str(before), t.context(counter)
        t.expect_re(bt, rf"#1  0x[0-9a-f]+ in main \(\) at \S*gdb_debuggee\.c:{L('loop-add')}")
    t.expect(start, HISTORY_START)
    t.expect(start_again, HISTORY_START)
    # the same breakpoint hit again gives the same values
    t.expect(again, "Breakpoint 1, add_to_counter (delta=1)")
    assert t.value(again_counter) == "0", t.context(again_counter)
    t.expect(again2, "Breakpoint 1, add_to_counter (delta=2)")
    t.expect(again2_args, "delta = 2")


def test_reverse_continue_from_the_end_and_forward_again(
    debuggee: Recording, tmp_path: Path
) -> None:
    """From the SIGKILL stop at the end, reverse to the last hit; forward and back mixed."""
    L = debuggee.line
    s = GdbScript()
    end = s("continue")
    s("break square")
    last = s("reverse-continue")
    last_args = s("info args")
    prev = s("reverse-continue")
    fwd = s("continue")
    fwd_args = s("info args")
    nxt = s("next")
    res = s("print result")
    rnxt = s("reverse-next")
    rres = s("print result")
    rfin = s("reverse-finish")
    rfin_total = s("print total")
    s("delete")
    to_end = s("continue")
    exited = s("continue")
    with replay_server(debuggee, tmp_path) as server:
        t = s.run_remote(server)
        out = server.stdout()
    t.expect(end, "Program received signal SIGKILL")
    t.expect(last, "Breakpoint 1, square (n=4)")
    t.expect(last_args, "n = 4")
    t.expect(prev, "Breakpoint 1, square (n=3)")
    t.expect(fwd, "Breakpoint 1, square (n=4)")
    t.expect(fwd_args, "n = 4")
    t.expect_line(nxt, L("square-return"))
    assert t.value(res) == "16", t.context(res)
    t.expect_line(rnxt, L("square-body"))
    t.expect_re(rfin, rf"0x[0-9a-f]+ in main \(\) at \S*gdb_debuggee\.c:{L('loop-call')}")
    # before the fourth call: 1 + 4 + 9
    assert t.value(rfin_total) == "14", t.context(rfin_total)
    del rres  # `result` is uninitialised before its line ran; not checked
    t.expect(to_end, "Program received signal SIGKILL")
    t.expect(exited, "exited with code 052]")
    # the replay printed the recorded output (whether re-executed writes print again
    # is the server's choice), and nothing that was not recorded
    assert out.startswith(debuggee.stdout), out
    assert set(out.splitlines()) == set(debuggee.stdout.splitlines()), out


def test_reverse_watchpoint_walks_back_through_the_writes(
    debuggee: Recording, tmp_path: Path
) -> None:
    L = debuggee.line
    s = GdbScript()
    s(f"break gdb_debuggee.c:{L('printf-total')}")
    s("continue")
    s("delete")
    s("watch counter")
    hits = [s("reverse-continue") for _ in range(4)]
    args = s("info args")
    fwd = [s("continue") for _ in range(2)]
    # back from a forward watchpoint stop: first over the write that stop reported
    back = [s("reverse-continue") for _ in range(2)]
    start = s("reverse-continue")
    with replay_server(debuggee, tmp_path) as server:
        t = s.run_remote(server)
    # in reverse gdb shows Old = the value after the write, New = the value before it,
    # and stops at the writing line (pc on the storing instruction), as with rr
    for index, (old, new, delta) in zip(
        hits, ((10, 6, 4), (6, 3, 3), (3, 1, 2), (1, 0, 1)), strict=True
    ):
        t.expect(
            index,
            "Hardware watchpoint 2: counter",
            f"Old value = {old}",
            f"New value = {new}",
            f"add_to_counter (delta={delta})",
        )
        t.expect_line(index, L("counter-store"))
    t.expect(args, "delta = 1")
    t.expect(fwd[0], "Old value = 0", "New value = 1", "add_to_counter (delta=1)")
    t.expect(fwd[1], "Old value = 1", "New value = 3", "add_to_counter (delta=2)")
    for index, (old, new, delta) in zip(back, ((3, 1, 2), (1, 0, 1)), strict=True):
        t.expect(index, f"Old value = {old}", f"New value = {new}",
                 f"add_to_counter (delta={delta})")
        t.expect_line(index, L("counter-store"))
    # before the first write: counter is never written again going back (static data)
    t.expect(start, HISTORY_START)


def _leak_addresses(leak: Recording) -> list[str]:
    found = re.findall(rb"stored node-\d at (0x[0-9a-f]+)", leak.stdout)
    assert len(found) == 3, leak.stdout
    return [a.decode() for a in found]


def test_leak_scenario_watch_slot_from_the_end(leak: Recording, tmp_path: Path) -> None:
    """Who stored the leaked pointer? watch -l the slot at the end, reverse-continue."""
    L = leak.line
    a, b, c = _leak_addresses(leak)
    s = GdbScript()
    end = s("continue")
    slot = s("print holder->slot")
    s("watch -l *(void **)&holder->slot")
    store_c = s("reverse-continue")
    store_b = s("reverse-continue")
    store_a = s("reverse-continue")
    value_a = s("print holder->slot")
    fwd = s("continue")
    with replay_server(leak, tmp_path) as server:
        t = s.run_remote(server)
    t.expect(end, "Program received signal SIGKILL")
    t.expect(slot, f"(void *) {c}")
    for index, (old, new, marker) in zip(
        (store_c, store_b, store_a),
        ((c, b, "store-c"), (b, a, "store-b"), (a, "0x0", "store-a")),
        strict=True,
    ):
        t.expect(
            index,
            "Hardware watchpoint 1: -location *(void **)&holder->slot",
            f"Old value = (void *) {old}",
            f"New value = (void *) {new}",
        )
        t.expect_re(index, rf"in main \(\) at \S*gdb_leak\.c:{L(marker)}\n{L(marker)}\t")
    assert t.value(value_a) == "(void *) 0x0", t.context(value_a)
    t.expect(fwd, "Old value = (void *) 0x0", f"New value = (void *) {a}")


def _run_record_full(script: GdbScript, binary: Path) -> Transcript:
    """The script natively under gdb's `record full`: the reference, which some hosts
    cannot provide (gdb 13 fails to restore the XSAVE area of CPUs with AMX tiles)."""
    t = script.run_native(binary)
    if "Couldn't write extended state status" in t.text:
        pytest.skip("gdb's own `record full` cannot go backwards on this CPU")
    return t


def _positions(t: Transcript, indices: list[int]) -> list[str]:
    return [t.where(i) for i in indices]


def test_reverse_step_next_finish_stepi_match_gdb_record_full(
    debuggee: Recording, tmp_path: Path
) -> None:
    """The same commands natively under gdb's `record full` and against the replay.

    Forward first to the furthest point (a native record must not go past the end of
    its log), then backwards across printf (a write syscall), into and out of calls,
    instruction by instruction, and forward again inside the recorded stretch.
    """
    L = debuggee.line
    steps = [
        f"advance {L('printf-total')}",
        "next",  # over printf: a write syscall
        "next",
        "reverse-next",  # back over origin.x = total
        "reverse-next",  # back over printf
        "reverse-next",  # to the loop's for line
        "reverse-step",  # into add_to_counter(4), its last line
        "reverse-step",
        "reverse-step",
        "reverse-finish",  # out to the call in main
        "reverse-next",
        "reverse-step",  # into square(4)
        "reverse-finish",
        "reverse-stepi",
        "reverse-stepi",
        "reverse-stepi",
        "stepi",
        "stepi",
        "next",
        "step",
        "finish",
        "next",
    ]

    def script(native: bool) -> tuple[GdbScript, list[int], list[int]]:
        s = GdbScript()
        s(f"break gdb_debuggee.c:{L('loop-add')}")
        s("run" if native else "continue")
        s("delete")
        if native:
            s("record full")
        where = [s("where-line")]
        printed = []
        for step in steps:
            s(step)
            where.append(s("where-line"))
            printed.append(s("print counter"))
        return s, where, printed

    native, native_where, native_counter = script(native=True)
    tn = _run_record_full(native, debuggee.binary)
    replay, replay_where, replay_counter = script(native=False)
    with replay_server(debuggee, tmp_path) as server:
        tr = replay.run_remote(server)

    expected = _positions(tn, native_where)
    got = _positions(tr, replay_where)
    table = "\n".join(
        f"{cmd:>16}  record-full: {e:<40} rrgdb: {g}"
        for cmd, e, g in zip(["(start)", *steps], expected, got, strict=True)
    )
    assert got == expected, f"positions differ\n{table}\n{tr.context()}"
    assert [tr.value(i) for i in replay_counter] == [tn.value(i) for i in native_counter], table
    # and the comparison is not vacuous: the reverse commands did cross printf and calls
    assert expected[5].startswith(f"main {L('printf-total')} "), table
    assert expected[7].startswith("add_to_counter "), table
    assert expected[10].startswith(f"main {L('loop-add')} main+"), table
    assert expected[12].startswith("square "), table


def test_reverse_finish_out_of_recursion_matches_gdb_record_full(
    debuggee: Recording, tmp_path: Path
) -> None:
    L = debuggee.line
    # Only reverse commands: gdb's `record full` history ends where recording stopped (the
    # starting point here), so a forward `next` there stops at that end, while a replay of
    # the whole program rightly carries on.
    steps = [
        "reverse-finish",
        "reverse-finish",
        "reverse-step",
        "reverse-next",
        "reverse-finish",
    ]

    def script(native: bool) -> tuple[GdbScript, list[int], list[int]]:
        s = GdbScript()
        s(f"break gdb_debuggee.c:{L('printf-factorial')}")
        s("run" if native else "continue")
        s("delete")
        if native:
            s("record full")
        s("break factorial if n == 1")
        s("continue")
        s("delete")
        where = [s("where-line")]
        ns = [s("print n")]
        for step in steps:
            s(step)
            where.append(s("where-line"))
            ns.append(s("print n"))
        return s, where, ns

    native, native_where, native_n = script(native=True)
    tn = _run_record_full(native, debuggee.binary)
    replay, replay_where, replay_n = script(native=False)
    with replay_server(debuggee, tmp_path) as server:
        tr = replay.run_remote(server)
    expected = _positions(tn, native_where)
    got = _positions(tr, replay_where)
    table = "\n".join(
        f"{cmd:>16}  record-full: {e:<40} rrgdb: {g}"
        for cmd, e, g in zip(["(start)", *steps], expected, got, strict=True)
    )
    assert got == expected, f"positions differ\n{table}\n{tr.context()}"
    assert [tr.value(i) for i in replay_n] == [tn.value(i) for i in native_n], table
    assert expected[0].startswith(f"factorial {L('factorial-test')} "), table
    assert expected[1].startswith(f"factorial {L('factorial-recurse')} "), table
    assert [tn.value(i) for i in native_n][:3] == ["1", "2", "3"], table


def test_reverse_stepi_retraces_forward_stepi(debuggee: Recording, tmp_path: Path) -> None:
    L = debuggee.line
    s = GdbScript()
    s("break add_to_counter")
    s("continue")
    s("continue")
    s("continue")
    pcs = [s("print/x $pc")]
    regs = [s("print/x $rax")]
    for _ in range(5):
        s("stepi")
        pcs.append(s("print/x $pc"))
        regs.append(s("print/x $rax"))
    back_pcs, back_regs = [], []
    for _ in range(5):
        s("reverse-stepi")
        back_pcs.append(s("print/x $pc"))
        back_regs.append(s("print/x $rax"))
    counter = s("print counter")
    args = s("info args")
    prologue = s("reverse-stepi")  # back into the prologue, before the breakpoint address
    earlier = s("reverse-continue")  # then the previous hit
    earlier_args = s("info args")
    with replay_server(debuggee, tmp_path) as server:
        t = s.run_remote(server)
    forward = [t.value(i) for i in pcs]
    backward = [t.value(i) for i in back_pcs]
    assert len(set(forward)) == 6, t.context()
    assert backward == forward[-2::-1], t.context()
    assert [t.value(i) for i in back_regs] == [t.value(i) for i in regs][-2::-1], t.context()
    assert t.value(counter) == "3", t.context(counter)
    t.expect(args, "delta = 3")
    t.expect_re(prologue, rf"^0x[0-9a-f]+\t{L('counter-store') - 1}\t\{{")
    t.expect(earlier, "Breakpoint 1, add_to_counter (delta=2)")
    t.expect(earlier_args, "delta = 2")


def test_run_restarts_keeping_breakpoints(debuggee: Recording, tmp_path: Path) -> None:
    s = GdbScript()
    s("break add_to_counter")
    s("continue")
    second = s("continue")
    run = s("run")
    run_args = s("info args")
    run_counter = s("print counter")
    nxt = s("continue")
    back = s("reverse-continue")
    with replay_server(debuggee, tmp_path) as server:
        t = s.run_remote(server)
    t.expect(second, "add_to_counter (delta=2)")
    t.expect(run, "Breakpoint 1, add_to_counter (delta=1)")
    t.expect(run_args, "delta = 1")
    assert t.value(run_counter) == "0", t.context(run_counter)
    t.expect(nxt, "Breakpoint 1, add_to_counter (delta=2)")
    t.expect(back, "Breakpoint 1, add_to_counter (delta=1)")


def _write_event(recording: Recording, length: int) -> int:
    """The event number (`rrgdb dump`) of the recorded write syscall of `length` bytes."""
    dump = run_rrgdb(["dump", recording.trace])
    return int(re.search(rf"(?m)^(\d+)\t\d+\tsyscall write = {length}$",
                         dump.stdout.decode()).group(1))


def test_goto_event_and_run_to_an_event(debuggee: Recording, tmp_path: Path) -> None:
    """`replay -g N` starts gdb on the thread making event N, about to make it (rr's -g);
    the debugger goes back from there; gdb's `run N` goes to event N, `run cN` to
    checkpoint N (as rr's)."""
    L = debuggee.line
    sorted_write = _write_event(debuggee, len(b"sorted 1 3 5 7 9\n"))
    factorial_write = _write_event(debuggee, len(b"factorial 120\n"))
    s = GdbScript()
    when = s("monitor when")
    bt = s("backtrace")
    x = s("print origin.x")
    checkpoint = s("monitor checkpoint")
    s("break compare_ints")
    s("break factorial")  # called after event N only
    back = s("reverse-continue")
    s("delete")
    s("break write")
    run = s(f"run {factorial_write}")
    run_when = s("monitor when")
    run_checkpoint = s("run c1")
    checkpoint_when = s("monitor when")
    with replay_server(debuggee, tmp_path, ["-g", str(sorted_write)]) as server:
        t = s.run_remote(server)
    t.expect(when, f"Current event: {sorted_write}")
    t.expect_re(bt, r"#0 .*write \(fd=1, buf=0x[0-9a-f]+, nbytes=17\)")
    t.expect_re(bt, rf"in main \(\) at \S*gdb_debuggee\.c:{L('printf-sorted')}")
    assert t.value(x) == "30", t.context(x)
    t.expect(checkpoint, f"Checkpoint 1 at event {sorted_write}")
    t.expect(back, "Breakpoint 1, compare_ints")
    # at event N the write of factorial's line is under way: the next write is "done\n"
    t.expect_re(run, r"Breakpoint 3, .*write \(fd=1, buf=0x[0-9a-f]+, nbytes=5\)")
    assert int(t.expect_re(run_when, r"Current event: (\d+)").group(1)) > factorial_write
    t.expect_re(run_checkpoint, r"Breakpoint 3, .*write \(fd=1, buf=0x[0-9a-f]+, nbytes=14\)")
    event = int(t.expect_re(checkpoint_when, r"Current event: (\d+)").group(1))
    assert sorted_write < event <= factorial_write, t.context(checkpoint_when)


def test_goto_refuses_what_it_cannot_reach(debuggee: Recording) -> None:
    events = len(run_rrgdb(["dump", debuggee.trace]).stdout.splitlines())
    reachable = f"gdb can go to events 1 to {events - 1}"
    for options, message in (
            (["-g", str(events)], f"no event {events} to go to: {reachable}"),
            (["-g", "0"], f"no event 0 to go to: {reachable}"),
            (["-a", "-g", "5"], "-g EVENT starts a debugger there: it does not go with -a")):
        replayed = run_rrgdb(["replay", *options, debuggee.trace])
        assert replayed.returncode == 2, replayed
        assert replayed.stderr.decode() == f"rrgdb: {message}\n", replayed.stderr


def test_reverse_stepping_back_through_a_loop(tmp_path: Path) -> None:
    """Reverse steps inside a loop of 50000 iterations without events: each reverse-stepi
    there counts the visits of the code before it from the last checkpoint, and the states
    it then steps through go back several iterations, so the next reverse steps are served
    from them (with one iteration each, this session does not end in its timeout)."""
    loop = record_program("busy_loop", "O0", tmp_path)
    L = loop.line
    s = GdbScript()
    s(f"break {L('after-loop')}")
    s("continue")
    steps = [(s("reverse-next"), s("print i")) for _ in range(6)]
    stepis = [s("reverse-stepi") for _ in range(40)]
    last_i = s("print i")
    with replay_server(loop, tmp_path) as server:
        t = s.run_remote(server, timeout=90)
    # loop-head (the test of i = 50000), then body and head of each earlier iteration
    for n, (step, value) in enumerate(steps):
        t.expect_line(step, L("loop-body") if n % 2 else L("loop-head"))
        assert t.value(value) == str(49999 - n // 2), t.context(value)
    for stepi in stepis:
        assert "rror" not in t[stepi], t.context(stepi)
    assert 49990 <= int(t.value(last_i)) < 49997, t.context(last_i)  # a few iterations back


def test_monitor_when_checkpoint_restart(debuggee: Recording, tmp_path: Path) -> None:
    s = GdbScript()
    help_ = s("monitor help")
    s("break add_to_counter")
    s("continue")
    s("continue")
    s("continue")
    when = s("monitor when")
    checkpoint = s("monitor checkpoint")
    s("continue")
    later = s("monitor when")
    info = s("monitor info checkpoints")
    restart = s("monitor restart 1")
    # the seek happened behind gdb's back (as with rr): make gdb forget what it cached
    s("maintenance flush register-cache")
    s("maintenance flush dcache")
    args = s("info args")
    counter = s("print counter")
    when_again = s("monitor when")
    nxt = s("continue")
    back = s("reverse-continue")
    tid = s("monitor real-tid")
    delete = s("monitor delete checkpoint 1")
    info_after = s("monitor info checkpoints")
    with replay_server(debuggee, tmp_path) as server:
        t = s.run_remote(server)
    for command in ("when", "checkpoint", "restart"):
        t.expect(help_, command)
    event = int(t.expect_re(when, r"Current event: (\d+)").group(1))
    t.expect_re(checkpoint, r"Checkpoint 1 at ")
    later_event = int(t.expect_re(later, r"Current event: (\d+)").group(1))
    assert later_event >= event, t.context(later)
    t.expect_re(info, r"(?m)^1\s")
    t.expect(restart, "Restarted")
    t.expect(args, "delta = 3")
    assert t.value(counter) == "3", t.context(counter)
    t.expect(when_again, f"Current event: {event}")
    t.expect(nxt, "Breakpoint 1, add_to_counter (delta=4)")
    t.expect(back, "Breakpoint 1, add_to_counter (delta=3)")
    t.expect_re(tid, r"\d+")
    assert "rror" not in t[delete], t.context(delete)
    assert not re.search(r"(?m)^1\s", t[info_after]), t.context(info_after)


def test_reverse_execution_over_shared_memory(tmp_path: Path) -> None:
    """Checkpoints are forks, which would share the program's MAP_SHARED mapping with the
    live process (its later writes reaching the checkpoint): each fork gets a copy of its
    own, so reverse-continue finds the running sum as it was, with no divergence."""
    recording = record_program("shared_history", "O0", tmp_path / "rec")
    s = GdbScript()
    end = s("continue")
    s("break note")
    last = s("reverse-continue")
    before = s("reverse-continue")
    with replay_server(recording, tmp_path) as server:
        t = s.run_remote(server)
    t.expect(end, "Program received signal SIGKILL")
    t.expect(last, "Breakpoint 1, note (sum=4498500)")  # 0 + 1 + ... + 2999
    t.expect(before, "Breakpoint 1, note (sum=4495501)")


@pytest.fixture(scope="module")
def long_stretch(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    rec = record_program("long_stretch", "O0", tmp_path_factory.mktemp("long-stretch"))
    assert rec.status == 0 and b"uname=0" in rec.stdout, rec
    return rec


def test_reverse_stepi_after_a_long_stretch_without_events(
        long_stretch: Recording, tmp_path: Path) -> None:
    """long_stretch computes for about a hundred million instructions without a syscall:
    single-stepping from the last event would take hours. reverse-stepi starts from the
    instruction the code says came before instead (or one shortly before): at leaf's
    entry the call in main; past its prologue the entry; just after leaf or the long
    compute() returned, their ret instructions; just after a syscall the syscall
    instruction. stepi goes forward again each time."""
    s = GdbScript()
    s("break *leaf")
    s("continue")
    entry = s("print/x $pc")
    s("reverse-stepi")
    call = s("x/i $pc")
    s("stepi")
    entry_again = s("print/x $pc")
    s("break leaf")
    s("continue")
    s("reverse-stepi")
    prologue = s("x/i $pc")
    s("delete")
    s("finish")
    returned = s("print/x $pc")
    s("reverse-stepi")
    in_leaf = s("x/i $pc")
    s("stepi")
    returned_again = s("print/x $pc")
    s("break compute")
    s("continue")
    s("delete")
    s("finish")
    computed = s("print/x $pc")
    s("reverse-stepi")
    in_compute = s("x/i $pc")
    s("stepi")
    computed_again = s("print/x $pc")
    s("break *after_uname")
    s("continue")
    label = s("print/x $pc")
    s("reverse-stepi")
    syscall = s("x/i $pc")
    s("stepi")
    after = s("print/x $pc")
    with replay_server(long_stretch, tmp_path) as server:
        t = s.run_remote(server)
    t.expect_re(call, r"<main\+\d+>:\s+call\s+0x[0-9a-f]+ <leaf>")
    assert t.value(entry_again) == t.value(entry), t.context(entry_again)
    t.expect_re(prologue, r"<leaf\+\d+>:")
    t.expect_re(in_leaf, r"<leaf\+\d+>:\s+ret")
    assert t.value(returned_again) == t.value(returned), t.context(returned_again)
    t.expect_re(in_compute, r"<compute\+\d+>:\s+ret")
    assert t.value(computed_again) == t.value(computed), t.context(computed_again)
    t.expect_re(syscall, r"<main\+\d+>:\s+syscall")
    assert t.value(after) == t.value(label), t.context(after)


def test_reverse_next_over_a_long_call(long_stretch: Recording, tmp_path: Path) -> None:
    """From the line after `sink += compute(sink)` (1e8 instructions in compute),
    reverse-next goes back over the call to its line in one go (the instruction before the
    next line is found by disassembling main), and reverse-step enters compute at its end."""
    s = GdbScript()
    s(f"break long_stretch.c:{long_stretch.line('raw')}")
    s("continue")
    back = s("reverse-next")
    into = s("reverse-step")
    where = s("bt 1")
    with replay_server(long_stretch, tmp_path) as server:
        t = s.run_remote(server)
    t.expect_line(back, long_stretch.line("again"))
    t.expect_re(where, r"#0\s+(0x[0-9a-f]+ in )?compute \(")
    assert t[into].strip(), t.context(into)
