"""Engine-level checks of the replay timeline (issue 4): seeking to a mark lands on
identical registers and memory every time, from any direction, and checkpoints stay
pristine when resumed from repeatedly."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from conftest import rrgdb_command, rrgdb_env

from rrgdb.kernel.address_space import memory_hash
from rrgdb.timeline.timeline import ReplayTimeline


def test_seeking_to_a_mark_reproduces_registers_and_memory(build, tmp_path: Path) -> None:
    binary = build("gdb_debuggee", "O0")
    trace = tmp_path / "trace"
    subprocess.run(rrgdb_command(["record", "-o", trace, binary]), env=rrgdb_env(),
                   capture_output=True)  # the program exits with 42
    symbols = subprocess.run(["nm", str(binary)], capture_output=True, text=True).stdout
    offset = next(int(line.split()[0], 16) for line in symbols.splitlines()
                  if line.endswith(" add_to_counter"))
    timeline = ReplayTimeline(trace, echo=None)
    try:
        timeline.start()
        timeline.add_breakpoint(0x555555554000 + offset)
        seen = []
        while timeline.forward().kind == "breakpoint":
            seen.append((timeline.mark(), timeline.task.regs().to_bytes(),
                         memory_hash(timeline.task)))
        assert len(seen) >= 3
        order = list(range(len(seen))) * 2
        random.Random(7).shuffle(order)
        for index in order:
            mark, regs, memory = seen[index]
            timeline.seek(mark)
            assert timeline.task.regs().to_bytes() == regs, f"registers at hit {index}"
            assert memory_hash(timeline.task) == memory, f"memory at hit {index}"
    finally:
        timeline.close()
