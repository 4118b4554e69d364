"""AddressSpace: the mappings of a tracee's memory as /proc/PID/maps describes them, and the
exec-time work shared by record and replay (auxv rewriting, initial memory snapshot)."""

from __future__ import annotations

from dataclasses import dataclass

from rrgdb import native
from rrgdb.kernel.task import Task

PROT_READ, PROT_WRITE, PROT_EXEC = 1, 2, 4
MAP_PRIVATE, MAP_SHARED = 0x02, 0x01

AT_NULL, AT_IGNORE, AT_SYSINFO_EHDR = 0, 1, 33
SYSCALL_BUFFER_ADDR = 0x70010000  # the preload library's buffer (rrgdb.syscallbuf)


@dataclass(frozen=True, slots=True)
class MapsEntry:
    """One line of /proc/PID/maps."""

    start: int
    end: int
    prot: int
    shared: bool
    offset: int
    inode: int
    path: str

    @property
    def is_file(self) -> bool:
        return self.inode != 0 and self.path.startswith("/")


def read_maps(pid: int) -> list[MapsEntry]:
    """The current mappings of process pid."""
    entries = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            start, end = (int(x, 16) for x in parts[0].split("-"))
            perms = parts[1]
            prot = ((PROT_READ if perms[0] == "r" else 0) | (PROT_WRITE if perms[1] == "w" else 0)
                    | (PROT_EXEC if perms[2] == "x" else 0))
            path = parts[5].rstrip("\n") if len(parts) > 5 else ""
            entries.append(MapsEntry(start, end, prot, perms[3] == "s", int(parts[2], 16),
                                     int(parts[4]), path))
    return entries


def hide_vdso(task: Task) -> None:
    """Turns the AT_SYSINFO_EHDR auxv entry into AT_IGNORE so libc makes real syscalls for
    clock_gettime and friends (which the recorder then sees). Call at the exec stop."""
    sp = task.regs().rsp
    argc = task.read_u64(sp)
    pos = sp + 8 * (argc + 2)  # skip argc, argv[], NULL
    while task.read_u64(pos):  # envp[]
        pos += 8
    pos += 8
    while True:
        key = task.read_u64(pos)
        if key == AT_NULL:
            return
        if key == AT_SYSINFO_EHDR:
            task.write(pos, AT_IGNORE.to_bytes(8, "little"))
        pos += 16


def writable_snapshot(task: Task, entries: list[MapsEntry]) -> list[tuple[int, bytes]]:
    """The contents of every private writable mapping (the state exec leaves behind that
    replay must reproduce: data segments, bss, the stack with argv/envp/auxv/AT_RANDOM)."""
    out = []
    for entry in entries:
        if entry.prot & PROT_WRITE and not entry.shared and entry.path not in ("[vvar]",):
            data = task.read(entry.start, entry.end - entry.start)
            if data:
                out.append((entry.start, data))
    return out


def memory_hash(task: Task) -> bytes:
    """A 32-byte digest of the contents and addresses of every private writable mapping
    of the task's process: with the registers, it identifies a moment between syscalls.
    Never-touched anonymous pages count as the zeros they read as, unread."""
    return native.memory_hash(task.tid, _hashed_ranges(task))


def page_hashes(task: Task) -> dict[int, int]:
    """The hash of each page memory_hash() counts, by address: which pages changed
    between two moments."""
    return native.page_hashes(task.tid, _hashed_ranges(task))


def _hashed_ranges(task: Task) -> list[tuple[int, int, bool]]:
    """(start, end, zero_fill) of the mappings memory_hash() covers."""
    return [(entry.start, entry.end, entry.inode == 0) for entry in read_maps(task.tid)
            if entry.prot & PROT_WRITE and not entry.shared
            # its records are in the trace; its in_replay byte differs by design
            and entry.start != SYSCALL_BUFFER_ADDR]
