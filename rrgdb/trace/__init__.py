"""The on-disk trace format: a versioned directory of a header, a zstd-compressed block
stream of frames, and content-addressed copies of the files the program used.

See docs/trace-format.md for the layout; TraceWriter writes a trace, TraceReader reads one.
"""

from ._frames import (
    CpuidFrame,
    ExecFrame,
    ExitFrame,
    FlushFrame,
    Frame,
    InstructionTrapFrame,
    Mapping,
    MemWrite,
    PreemptFrame,
    SignalFrame,
    SyscallEntryFrame,
    SyscallFrame,
    TraceError,
    TraceHeader,
)
from ._layout import (
    ALTSTACK_OFF_SINCE,
    FORMAT_VERSION,
    OUTPUT_CRC_SINCE,
    XSAVE_GAPS_ZEROED_SINCE,
)
from ._reader import TraceReader
from ._writer import TraceWriter

__all__ = [
    "ALTSTACK_OFF_SINCE",
    "OUTPUT_CRC_SINCE",
    "FORMAT_VERSION",
    "CpuidFrame",
    "ExecFrame",
    "ExitFrame",
    "FlushFrame",
    "Frame",
    "InstructionTrapFrame",
    "Mapping",
    "MemWrite",
    "PreemptFrame",
    "SignalFrame",
    "SyscallEntryFrame",
    "SyscallFrame",
    "TraceError",
    "TraceHeader",
    "TraceReader",
    "TraceWriter",
    "XSAVE_GAPS_ZEROED_SINCE",
]
