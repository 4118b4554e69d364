"""`rrgdb record`: run a program and save a trace of it."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from rrgdb.commands._common import new_trace_dir, point_latest, say
from rrgdb.record.session import (
    RecordError,
    RecordSession,
    exit_code,
    resolve_program,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", metavar="TRACE_DIR", help="where to write the trace")
    parser.add_argument("--no-syscallbuf", action="store_true",
                        help="trap every syscall (no in-process syscall buffering)")
    parser.add_argument("--no-cpuid-faulting", action="store_true",
                        help="let cpuid run untrapped (saves ~70 traps per process "
                             "start; replay then needs a CPU that answers the same)")
    parser.add_argument("program", help="the program to record")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")


class _Terminated(Exception):
    pass


def _on_sigterm(signo: int, frame: object) -> None:
    raise _Terminated()


def run(args: argparse.Namespace) -> int:
    try:
        resolve_program(args.program)
    except RecordError as e:
        say(str(e))
        return 127
    trace_dir = Path(args.output) if args.output else new_trace_dir(args.program)
    if trace_dir.exists() and any(trace_dir.iterdir()):
        say(f"{trace_dir} exists and is not empty; choose another -o directory")
        return 2
    session = RecordSession([args.program, *args.args], trace_dir,
                            syscallbuf=not args.no_syscallbuf,
                            cpuid_faulting=not args.no_cpuid_faulting)
    if sys.stderr.isatty():  # on a terminal, say how time is kept (also in the trace header)
        say(f"recording with {session.mode}")
    # ^C goes to the whole foreground group: the program decides what it means.
    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        status = session.run()
    except RecordError as e:
        say(str(e))
        say(f"incomplete trace saved to {trace_dir}")
        return 1
    except _Terminated:
        say(f"terminated; incomplete trace saved to {trace_dir}")
        return 128 + signal.SIGTERM
    except OSError as e:  # e.g. the trace's disk is full: a message, not a traceback
        say(f"recording stopped: {e.strerror or e}")
        if (trace_dir / "header").exists():
            say(f"incomplete trace saved to {trace_dir}")
        return 1
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)
    if not args.output:
        point_latest(trace_dir)
    say(f"trace saved to {trace_dir}")
    return exit_code(status)
