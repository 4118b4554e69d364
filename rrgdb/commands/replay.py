"""`rrgdb replay`: replay a trace, alone (-a), serving gdb (-s PORT), or under a gdb that
rrgdb starts itself (neither)."""

from __future__ import annotations

import argparse
import functools
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from rrgdb.commands._common import EXIT_BAD_TRACE, resolve_trace, say
from rrgdb.record.session import exit_code
from rrgdb.replay.processes import check_goto_event, choose_process, recorded_processes
from rrgdb.replay.session import DivergenceError, IncompleteTrace, ReplaySession
from rrgdb.trace import TraceError, TraceReader


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--autopilot", action="store_true",
                        help="replay to the end without a debugger")
    parser.add_argument("-s", "--port", type=int, help="serve gdb on 127.0.0.1:PORT")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1)")
    chosen = parser.add_mutually_exclusive_group()
    chosen.add_argument("-p", "--onprocess", metavar="PID|NAME",
                        help="debug this process (see `rrgdb ps`) from its first exec")
    chosen.add_argument("-f", "--onfork", metavar="PID",
                        help="debug this process from its fork")
    parser.add_argument("-g", "--goto", type=int, metavar="EVENT",
                        help="start debugging at event EVENT (`rrgdb dump`, gdb's `when`)")
    parser.add_argument("trace", nargs="?", help="trace directory (default: the latest)")


def run(args: argparse.Namespace) -> int:
    trace_dir = resolve_trace(args.trace)
    try:
        TraceReader(trace_dir)  # fail early, with one line, on a bad trace
    except TraceError as e:
        say(str(e))
        return EXIT_BAD_TRACE
    if args.autopilot:
        if args.goto is not None:
            say("-g EVENT starts a debugger there: it does not go with -a")
            return EXIT_BAD_TRACE
        return _autopilot(trace_dir)
    wanted = args.onprocess or args.onfork
    follow = 0
    if wanted or args.goto is not None:
        try:
            frames = list(TraceReader(trace_dir).frames())
            processes = recorded_processes(frames)
            process = choose_process(processes, wanted) if wanted else next(
                iter(processes.values()))
            if args.goto is not None:
                first = process.start_of_debugging(bool(args.onfork))
                check_goto_event(args.goto, first, len(frames))
        except (TraceError, ValueError) as e:
            say(str(e))
            return EXIT_BAD_TRACE
        follow = process.pid if wanted else 0
    factory = functools.partial(_target_factory, trace_dir, follow, bool(args.onfork),
                                args.goto)
    if args.port is not None:
        return _serve(factory, args.host, args.port)
    return _with_gdb(factory, args.host)


def _autopilot(trace_dir: Path) -> int:
    session = ReplaySession(trace_dir)
    try:
        session.start()
        status = session.run_to_end(_show_progress if sys.stderr.isatty() else None)
    except TraceError as e:
        say(str(e))
        return EXIT_BAD_TRACE
    except (DivergenceError, IncompleteTrace) as e:
        say(str(e))
        return 1
    except KeyboardInterrupt:
        say("interrupted")
        return 128 + signal.SIGINT
    finally:
        session.close()
    return exit_code(status)


def _show_progress(applied: int, total: int) -> None:
    """On a terminal: one self-overwriting line (erased at the end by the next output)."""
    end = "\n" if applied >= total else ""
    sys.stderr.write(f"\rrrgdb: replaying event {applied}/{total}\x1b[K{end}")
    sys.stderr.flush()


def _target_factory(trace_dir: Path, follow: int, at_fork: bool, goto: int | None) -> object:
    from rrgdb.gdb.replay_target import ReplayTarget

    return ReplayTarget(trace_dir, follow=follow, at_fork=at_fork, goto=goto)


def _announce(host: str, port: int) -> None:
    say(f"listening; connect with: gdb -ex 'target extended-remote {host}:{port}'")


def _serve(factory: Callable[[], object], host: str, port: int) -> int:
    import trio

    from rrgdb.gdb.server import serve

    try:
        trio.run(functools.partial(serve, factory, host, port,  # type: ignore[arg-type]
                                   functools.partial(_announce, host)))
    except KeyboardInterrupt:
        return 0
    except OSError as e:
        say(f"cannot listen on {host}:{port}: {e.strerror}")
        return EXIT_BAD_TRACE
    return 0


def _with_gdb(factory: Callable[[], object], host: str) -> int:
    import trio

    from rrgdb.gdb.server import serve

    gdb = shutil.which("gdb")
    if gdb is None:
        say("gdb is not installed; use -s PORT to serve another debugger, or -a")
        return EXIT_BAD_TRACE
    status = 0

    async def main() -> None:
        nonlocal status
        send, ready = trio.open_memory_channel(1)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(serve, factory, host, 0,  # type: ignore[arg-type]
                                                 send.send_nowait))
            port = await ready.receive()
            from rrgdb.gdbext import SCRIPT

            command = [gdb, "-q", "-x", str(SCRIPT), "-ex", f"target extended-remote {host}:{port}"]
            process = await trio.run_process(command, check=False, stdin=None)
            status = process.returncode
            nursery.cancel_scope.cancel()

    # ^C belongs to gdb (it interrupts the replay through the protocol).
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        trio.run(main)
    finally:
        signal.signal(signal.SIGINT, previous)
    return status
