"""gdb/MI against ``rrgdb replay -s``, driven through pygdbmi the way IDEs drive gdb.

VS Code's cppdbg (MIEngine) and CLion send MI commands: -target-select, -break-insert,
-exec-continue/-exec-next, -stack-list-frames, -data-evaluate-expression, and for reverse
debugging the same commands with --reverse. The end of the recording must not end the
session: MI reports ``signal-received`` SIGKILL (not ``exited``), and reverse execution
still works from there.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from gdb_helpers import MiSession, Recording, record_program, replay_server, requires_gdb

pytestmark = requires_gdb


@pytest.fixture(scope="module")
def debuggee(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    rec = record_program("gdb_debuggee", "O0", tmp_path_factory.mktemp("gdb-mi"))
    assert rec.status == 42, rec
    return rec


def _frame(stopped: dict) -> dict:
    return stopped.get("frame") or {}


def _args(stopped: dict) -> dict[str, str]:
    return {a["name"]: a["value"] for a in _frame(stopped).get("args") or []}


def test_mi_forward_and_reverse_session(debuggee: Recording, tmp_path: Path) -> None:
    L = debuggee.line
    with replay_server(debuggee, tmp_path) as server, MiSession() as mi:
        mi.done("-gdb-set pagination off")
        mi.done("-gdb-set confirm off")
        # MIEngine inserts its entry breakpoint before connecting
        mi.done("-break-insert -f add_to_counter")
        connected = mi.command(f"-target-select extended-remote {server.address}")
        assert connected["message"] == "connected", f"{connected}\n{mi.dump()}"
        features = mi.done("-list-target-features")
        assert "reverse" in features.get("features", []), f"{features}\n{mi.dump()}"

        first = mi.run("-exec-continue")
        assert first.get("reason") == "breakpoint-hit", first
        assert _frame(first).get("func") == "add_to_counter" and _args(first) == {"delta": "1"}
        second = mi.run("-exec-continue")
        assert _args(second) == {"delta": "2"}, second
        assert _frame(second).get("line") == str(L("counter-store")), second

        frames = mi.done("-stack-list-frames")["stack"]
        assert [f["func"] for f in frames] == ["add_to_counter", "main"], frames
        assert frames[1]["line"] == str(L("loop-add")), frames
        assert mi.done("-data-evaluate-expression counter")["value"] == "1"
        assert mi.done("-data-evaluate-expression delta*10")["value"] == "20"
        assert mi.done('-data-evaluate-expression "origin.y"')["value"] == "4"

        nxt = mi.run("-exec-next")
        assert nxt.get("reason") == "end-stepping-range", nxt
        assert _frame(nxt).get("line") == str(L("counter-store") + 1), nxt
        assert mi.done("-data-evaluate-expression counter")["value"] == "3"

        # reverse: back to this call's breakpoint, then the previous call's
        back = mi.run("-exec-continue --reverse")
        assert back.get("reason") == "breakpoint-hit" and _args(back) == {"delta": "2"}, back
        assert mi.done("-data-evaluate-expression counter")["value"] == "1"
        back2 = mi.run("-exec-continue --reverse")
        assert _args(back2) == {"delta": "1"}, back2
        assert mi.done("-data-evaluate-expression counter")["value"] == "0"

        # reverse-next from the first line of add_to_counter: back into main's call line
        rnext = mi.run("-exec-next --reverse")
        assert rnext.get("reason") == "end-stepping-range", rnext
        assert _frame(rnext).get("func") == "main", rnext
        assert _frame(rnext).get("line") == str(L("loop-add")), rnext
        # reverse-step from there: into square(1), which ran just before
        rstep = mi.run("-exec-step --reverse")
        assert rstep.get("reason") == "end-stepping-range", rstep
        assert _frame(rstep).get("func") == "square", rstep
        assert mi.done("-data-evaluate-expression n")["value"] == "1"
        rfin = mi.run("-exec-finish --reverse")
        assert rfin.get("reason") == "end-stepping-range", rfin
        assert _frame(rfin).get("func") == "main", rfin
        assert _frame(rfin).get("line") == str(L("loop-call")), rfin

        # to the end: a SIGKILL stop, not an exit, so the IDE session goes on
        mi.done("-break-delete")
        end = mi.run("-exec-continue")
        assert end.get("reason") == "signal-received", end
        assert end.get("signal-name") == "SIGKILL", end
        mi.done("-break-insert add_to_counter")
        last = mi.run("-exec-continue --reverse")
        assert last.get("reason") == "breakpoint-hit" and _args(last) == {"delta": "4"}, last
        assert mi.done("-data-evaluate-expression counter")["value"] == "6"
        before_when = len(mi.log)
        mi.done('-interpreter-exec console "monitor when"')
        assert "Current event:" in mi.console_since(before_when), mi.dump()

        mi.done("-break-delete")
        end2 = mi.run("-exec-continue")
        assert end2.get("reason") == "signal-received", end2
        exited = mi.run("-exec-continue")
        assert exited.get("reason") == "exited", exited
        assert exited.get("exit-code") == "052", exited


def test_mi_reverse_to_the_start_has_no_reason(debuggee: Recording, tmp_path: Path) -> None:
    with replay_server(debuggee, tmp_path) as server, MiSession() as mi:
        connected = mi.command(f"-target-select extended-remote {server.address}")
        assert connected["message"] == "connected", f"{connected}\n{mi.dump()}"
        mi.done("-break-insert square")
        hit = mi.run("-exec-continue")
        assert hit.get("reason") == "breakpoint-hit", hit
        mi.done("-break-delete")
        start = len(mi.log)
        back = mi.run("-exec-continue --reverse")
        # gdb 13 reports the start of history with no reason, and says so on the console
        assert "reason" not in back, back
        assert "No more reverse-execution history." in mi.console_since(start), mi.dump()
        again = mi.run("-exec-continue --reverse")  # at the start, the same again
        assert "reason" not in again, again
        mi.done("-break-insert square")
        forward = mi.run("-exec-continue")
        assert forward.get("reason") == "breakpoint-hit", forward
        assert _args(forward) == {"n": "1"}, forward


def test_interrupt_while_gdb_resumes_after_each_hit(tmp_path_factory: pytest.TempPathFactory,
                                                   tmp_path: Path) -> None:
    """A breakpoint whose condition is never true: gdb resumes after each hit, so the
    interrupt (`-exec-interrupt`, Ctrl-C) often comes between two resumes. It was dropped
    then, and the continue ran on to the end of the recording (200 s here); it is now
    kept for the next resume, which stops at once (gdbserver and a native gdb keep it
    too, as a SIGINT the process gets at its next resume)."""
    rec = record_program("busy_loop", "O0", tmp_path_factory.mktemp("gdb-mi-interrupt"))
    with replay_server(rec, tmp_path) as server, MiSession() as mi:
        mi.done("-gdb-set mi-async on")  # as IDEs: commands while the target runs
        mi.done(f"-file-exec-and-symbols {rec.binary}")
        mi.done(f"-target-select extended-remote {server.address}")
        mi.done(f'-break-insert -c "sum < 0" busy_loop.c:{rec.line("loop-body")}')
        assert mi.command("-exec-continue")["message"] == "running"
        time.sleep(1.0)
        mi.command("-exec-interrupt")
        stopped = mi.stopped(timeout=20)
        # an interrupt is reported as signal 0, as rr does (protocol.md)
        assert stopped.get("reason") == "signal-received", f"{stopped}\n{mi.dump()}"
        assert stopped.get("signal-name") == "0", f"{stopped}\n{mi.dump()}"
        turns = int(mi.done("-data-evaluate-expression i")["value"])
        assert 0 < turns < 50000, turns
        mi.done("-break-delete")
        end = mi.run("-exec-continue", timeout=60)
        assert end.get("signal-name") == "SIGKILL", f"{end}\n{mi.dump()}"
