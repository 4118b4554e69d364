"""gdb's thread-local variables and $_siginfo in a replay (tls_vars.c): qGetTLSAddr gives
each thread its own `counter`, `label` and libc's errno, forwards and after a
reverse-continue; qXfer:siginfo gives the recorded siginfo at a signal stop (as a native
gdb run of the same binary shows it) and the trap's own at breakpoints and steps. Also
the /proc/PID/task/PID/maps gdb opens at connect (for the vDSO), served for the recorded
pid."""

from __future__ import annotations

from pathlib import Path

import pytest
from gdb_helpers import (
    GdbScript,
    Recording,
    Transcript,
    record_program,
    replay_server,
    requires_gdb,
)

pytestmark = requires_gdb

PER_THREAD = {"counter": "42", "label": '"worker"', "errno": "7"}  # in the worker
MAIN_THREAD = {"counter": "9", "label": '"main"', "errno": "3"}  # main, waiting in join
SIGINFO_FIELDS = ("si_signo", "si_code", "_sifields._sigfault.si_addr")


@pytest.fixture(scope="module")
def tls_vars(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    rec = record_program("tls_vars", "O0", tmp_path_factory.mktemp("gdb-tls"))
    assert rec.status == 0, rec
    assert rec.stdout == b"counter 10 label main errno 3 usr1 10\n", rec
    return rec


def _values(script: GdbScript) -> dict[str, int]:
    """Print each thread-local variable (label as a C string); their command indexes."""
    return {name: script(f"print {'(char *) label' if name == 'label' else name}")
            for name in PER_THREAD}


def _printed(t: Transcript, indexes: dict[str, int]) -> dict[str, str]:
    return {name: t.value(index).split(" ", 1)[-1] if name == "label" else t.value(index)
            for name, index in indexes.items()}


def _siginfo(script: GdbScript) -> list[int]:
    return [script(f"print $_siginfo.{field}") for field in SIGINFO_FIELDS]


def test_each_thread_has_its_own_thread_local_variables(tls_vars: Recording,
                                                       tmp_path: Path) -> None:
    def script(start: str) -> tuple[GdbScript, dict[str, int], dict[str, int], int]:
        s = GdbScript(f"break {tls_vars.source.name}:{tls_vars.line('worker')}")
        stop = s(start)
        worker = _values(s)
        s("thread 1")
        main = _values(s)
        return s, worker, main, stop

    s, worker, main, stop = script("continue")
    with replay_server(tls_vars, tmp_path) as server:
        t = s.run_remote(server)
    t.expect(stop, "hit Breakpoint 1, worker")
    assert _printed(t, worker) == PER_THREAD, t.context()
    assert _printed(t, main) == MAIN_THREAD, t.context()
    native, n_worker, n_main, _ = script("run")
    n = native.run_native(tls_vars.binary)
    assert (_printed(n, n_worker), _printed(n, n_main)) == (PER_THREAD, MAIN_THREAD), n.context()


def test_thread_local_variables_of_a_static_program(tmp_path_factory: pytest.TempPathFactory,
                                                    tmp_path: Path) -> None:
    """No libc.so: gdb asks for link_map 0, and the descriptors are in the executable's
    .symtab (errno has no type without libc's debug information: not printed)."""
    rec = record_program("tls_vars", "static", tmp_path_factory.mktemp("gdb-tls-static"))
    assert rec.status == 0, rec
    s = GdbScript(f"break {rec.source.name}:{rec.line('worker')}")
    s("continue")
    worker = [s("print counter"), s("print (char *) label")]
    s("thread 1")
    main = [s("print counter"), s("print (char *) label")]
    with replay_server(rec, tmp_path) as server:
        t = s.run_remote(server)
    printed = [t.value(i).split(" ", 1)[-1] for i in worker + main]
    assert printed == ["42", '"worker"', "9", '"main"'], t.context()


def test_thread_local_variables_after_reverse_continue(tls_vars: Recording,
                                                       tmp_path: Path) -> None:
    s = GdbScript(f"break {tls_vars.source.name}:{tls_vars.line('joined')}")
    s("continue")
    s("next")
    later = s("print counter")
    s("delete 1")
    s(f"break {tls_vars.source.name}:{tls_vars.line('worker')}")
    back = s("reverse-continue")
    worker = _values(s)
    s("thread 1")
    main = _values(s)
    s(f"tbreak {tls_vars.source.name}:{tls_vars.line('joined')}")
    forward = s("continue")
    again = s("print counter")
    with replay_server(tls_vars, tmp_path) as server:
        t = s.run_remote(server)
    assert t.value(later) == "10", t.context(later)
    t.expect(back, "hit Breakpoint 2, worker")
    assert _printed(t, worker) == PER_THREAD, t.context()
    assert _printed(t, main) == MAIN_THREAD, t.context()
    t.expect(forward, "Temporary breakpoint 3, main")
    assert t.value(again) == "9", t.context(again)


def test_siginfo_at_signal_stops_matches_native_gdb(tls_vars: Recording,
                                                    tmp_path: Path) -> None:
    def script(start: str) -> tuple[GdbScript, list[int], list[int]]:
        s = GdbScript(f"break {tls_vars.source.name}:{tls_vars.line('joined')}", start)
        s("continue")  # SIGUSR1, from raise()
        usr1 = _siginfo(s)
        s("continue")  # SIGSEGV at 0x1234
        segv = _siginfo(s)
        return s, usr1, segv

    s, usr1, segv = script("continue")
    with replay_server(tls_vars, tmp_path) as server:
        t = s.run_remote(server)
    native, n_usr1, n_segv = script("run")
    n = native.run_native(tls_vars.binary)
    replayed = [t.value(i) for i in usr1[:2] + segv]
    assert replayed == ["10", "-6", "11", "1", "(void *) 0x1234"], t.context()
    assert replayed == [n.value(i) for i in n_usr1[:2] + n_segv], n.context()


def test_siginfo_is_the_stop_gdb_is_at_in_reverse(tls_vars: Recording, tmp_path: Path) -> None:
    s = GdbScript(f"break {tls_vars.source.name}:{tls_vars.line('usr1')}")
    s("continue")  # SIGUSR1
    s("continue")  # its handler
    at_breakpoint = _siginfo(s)
    s("continue")  # SIGSEGV
    segv = _siginfo(s)
    s("reverse-stepi")
    stepped_back = _siginfo(s)
    pc = s("print/x $pc")
    back = s("reverse-continue")
    back_at_breakpoint = _siginfo(s)
    forward = s("continue")
    segv_again = _siginfo(s)
    with replay_server(tls_vars, tmp_path) as server:
        t = s.run_remote(server)

    def values(indexes: list[int]) -> list[str]:
        return [t.value(i) for i in indexes]

    assert values(at_breakpoint) == ["5", "128", "(void *) 0x0"], t.context()  # int3
    assert values(segv) == ["11", "1", "(void *) 0x1234"], t.context()
    signo, code, addr = values(stepped_back)
    assert (signo, code) == ("5", "2"), t.context()  # TRAP_TRACE, at the pc
    assert addr.startswith(f"(void *) {t.value(pc)} <main+"), t.context()
    t.expect(back, "Breakpoint 1, on_usr1")
    assert values(back_at_breakpoint) == values(at_breakpoint), t.context()
    t.expect(forward, "SIGSEGV")
    assert values(segv_again) == values(segv), t.context()


def test_siginfo_of_a_signal_in_a_function_gdb_calls(tls_vars: Recording,
                                                     tmp_path: Path) -> None:
    """An inferior call runs in a live copy (a diversion): its SIGSEGV's siginfo is the
    kernel's, as in a native run."""
    def script(start: str) -> tuple[GdbScript, list[int]]:
        s = GdbScript(f"break {tls_vars.source.name}:{tls_vars.line('joined')}", start)
        s("print poke(0x4321)")
        return s, _siginfo(s)

    s, fault = script("continue")
    with replay_server(tls_vars, tmp_path) as server:
        t = s.run_remote(server)
    native, n_fault = script("run")
    n = native.run_native(tls_vars.binary)
    replayed = [t.value(i) for i in fault]
    assert replayed == ["11", "1", "(void *) 0x4321"], t.context()
    assert replayed == [n.value(i) for i in n_fault], n.context()

def test_maps_of_the_recorded_pid(tls_vars: Recording, tmp_path: Path) -> None:
    s = GdbScript(f"break {tls_vars.source.name}:{tls_vars.line('worker')}")
    s("continue")
    mappings = s("info proc mappings")
    with replay_server(tls_vars, tmp_path) as server:
        t = s.run_remote(server)
    assert "unable to open /proc file" not in t.setup[0], t.setup[0]
    t.expect(mappings, str(tls_vars.binary), "libc.so.6", "[stack]")
    assert str(tls_vars.trace) not in t[mappings], t.context(mappings)  # recorded names
