"""`rrgdb replay`: replay a trace, alone (-a) or under gdb."""

from __future__ import annotations

import argparse

from rrgdb.commands._common import EXIT_BAD_TRACE, resolve_trace, say
from rrgdb.record.session import exit_code
from rrgdb.replay.session import DivergenceError, ReplaySession
from rrgdb.trace import TraceError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--autopilot", action="store_true",
                        help="replay to the end without a debugger")
    parser.add_argument("-s", "--port", type=int, help="serve gdb on 127.0.0.1:PORT")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("trace", nargs="?", help="trace directory (default: the latest)")


def run(args: argparse.Namespace) -> int:
    trace_dir = resolve_trace(args.trace)
    if not args.autopilot:
        say("serving gdb is not available yet; use replay -a")
        return EXIT_BAD_TRACE
    try:
        session = ReplaySession(trace_dir)
    except TraceError as e:
        say(str(e))
        return EXIT_BAD_TRACE
    try:
        session.start()
        status = session.run_to_end()
    except TraceError as e:
        say(str(e))
        return EXIT_BAD_TRACE
    except DivergenceError as e:
        say(str(e))
        return 1
    finally:
        session.close()
    return exit_code(status)
