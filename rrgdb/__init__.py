"""rrgdb: record a Linux x86-64 program, replay it deterministically, and debug the replay
forwards and backwards from gdb over the GDB Remote Serial Protocol."""

__version__ = "0.1.0"
