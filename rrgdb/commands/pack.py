"""`rrgdb pack`: make a trace self-contained. Recording already copies every mapped file
into the trace; pack checks that each one the trace refers to is there, so the trace can
be moved elsewhere (or the originals deleted) and still replay."""

from __future__ import annotations

import argparse

from rrgdb.commands._common import EXIT_BAD_TRACE, resolve_trace, say
from rrgdb.trace import ExecFrame, SyscallFrame, TraceError, TraceReader


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", nargs="?", help="trace directory (default: the latest)")


def run(args: argparse.Namespace) -> int:
    try:
        reader = TraceReader(resolve_trace(args.trace))
        needed: set[str] = set()
        for frame in reader.frames():
            if isinstance(frame, ExecFrame):
                needed.add(frame.exe_file_id)
                needed.update(m.file_id for m in frame.mappings if m.file_id)
            elif isinstance(frame, SyscallFrame) and frame.file_id:
                needed.add(frame.copy_id)
        size = sum(reader.file_path(file_id).stat().st_size for file_id in needed)
    except TraceError as e:
        say(str(e))
        return EXIT_BAD_TRACE
    say(f"{reader.directory} is self-contained: {len(needed)} files, {size} bytes; "
        "it replays from any directory")
    return 0
