"""rrgdb's gdb extension: leak hunting and rr's command names, for gdb debugging a replay.

Load it with `source PATH` (PATH is what `rrgdb gdbinit` prints); `rrgdb replay` loads it
into the gdb it starts. It runs in gdb's own Python and uses only the standard library
and the `gdb` module. Commands:

  last [EXPR]            go back to the last write of the memory EXPR designates
  leak-roots ADDR...     which leaked objects are roots, and where each root's last
  leak-roots -f FILE     reference was stored (FILE: one leaked address per line)
  when                   the current event number        (monitor when)
  checkpoint             a checkpoint here               (monitor checkpoint)
  restart N              go to checkpoint N              (monitor restart N)
  info checkpoints       list the checkpoints            (monitor info checkpoints)
  delete checkpoint N    forget checkpoint N             (monitor delete checkpoint N)

See docs/leak-hunting.md in the rrgdb sources.
"""

import bisect
import contextlib
import os
import re
import struct

import gdb

WORD = 8
MAX_WATCH_BYTES = 32  # four debug registers of eight bytes
MAX_WATCHED_HOLDERS = 4
MAX_RESTORE_STOPS = 10000
_UINT = {1: "unsigned char", 2: "unsigned short", 4: "unsigned int", 8: "unsigned long"}
_RANGE = re.compile(r"^0x[0-9a-f]+-0x[0-9a-f]+$")
_IDENTITY_REGISTERS = ("rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi",
                       "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")


# ---------------------------------------------------------------------------- helpers


def monitor(command):
    """The text a `monitor COMMAND` prints."""
    return gdb.execute("monitor " + command, to_string=True)


def _require_process():
    if gdb.selected_inferior().pid == 0 or gdb.selected_thread() is None:
        raise gdb.GdbError("The replay is not running (connect with target extended-remote).")


def _when():
    match = re.search(r"(\d+)", monitor("when"))
    return int(match.group(1)) if match else -1


def _identity():
    """The present moment as far as gdb can tell: event number and general registers."""
    frame = gdb.newest_frame()
    return (_when(),) + tuple(int(frame.read_register(r)) for r in _IDENTITY_REGISTERS)


def _flush_caches():
    """After `monitor restart` gdb's cached registers and memory describe the old moment."""
    for command in ("maintenance flush register-cache", "maintenance flush dcache"):
        try:
            gdb.execute(command, to_string=True)
        except gdb.error:
            pass


def show_stop():
    """Prints the current location the way gdb shows a stop: pc, function, source line."""
    text = gdb.execute("frame", to_string=True)
    gdb.write(re.sub(r"^#0\s+", "", text))


@contextlib.contextmanager
def quiet():
    """Suppresses gdb's stop notifications (gdb 12+) while moving around internally."""
    try:
        before = gdb.parameter("suppress-cli-notifications")
        gdb.execute("set suppress-cli-notifications on", to_string=True)
    except (gdb.error, RuntimeError):  # an older gdb: the stops will show
        before = None
    try:
        yield
    finally:
        if before is not None:
            gdb.execute("set suppress-cli-notifications " + ("on" if before else "off"),
                        to_string=True)


@contextlib.contextmanager
def user_breakpoints_disabled():
    """The user's breakpoints and watchpoints would stop our reverse searches early."""
    disabled = []
    for bp in gdb.breakpoints() or ():
        if bp.is_valid() and bp.enabled:
            bp.enabled = False
            disabled.append(bp)
    try:
        yield
    finally:
        for bp in disabled:
            if bp.is_valid():
                bp.enabled = True


class Origin:
    """A moment to come back to, by running forwards (user breakpoints disabled) with an
    internal breakpoint at its pc until the event number and the registers match again.

    Not a `monitor checkpoint`: the replay places a checkpoint at the start of its event,
    so one made in the middle of an event would send later reverse searches that end in
    the same event to the wrong place. Forward execution also works where no checkpoint
    can be made (at the end of the recording)."""

    def __init__(self):
        self.identity = _identity()

    def restore(self):
        if _identity() == self.identity:
            return
        pc = self.identity[1]
        stop = gdb.Breakpoint(f"*{pc:#x}", internal=True)
        try:
            for _ in range(MAX_RESTORE_STOPS):
                gdb.execute("continue", to_string=True)
                if gdb.selected_thread() is None:
                    break
                now = _identity()
                if now == self.identity:
                    return
                if now[0] > self.identity[0]:
                    break
        finally:
            if stop.is_valid():
                stop.delete()
        raise gdb.GdbError(f"rrgdb: could not return to event {self.identity[0]}, pc {pc:#x}")


def watch_spec(value):
    """(address, size, gdb expression of the memory) for an lvalue."""
    address = value.address
    if address is None:
        raise gdb.GdbError("It is not in memory (a register or a computed value): "
                           "there is nothing to watch.")
    addr = int(address)
    size = value.type.sizeof
    candidates = [f"{{{value.type}}} {addr:#x}"]
    if size in _UINT:
        candidates.append(f"{{{_UINT[size]}}} {addr:#x}")
    candidates.append(f"{{char [{size}]}} {addr:#x}")
    for spec in candidates:
        try:
            if gdb.parse_and_eval(spec).type.sizeof == size:
                return addr, size, spec
        except gdb.error:
            continue
    raise gdb.GdbError(f"cannot watch {size} bytes at {addr:#x}")


def reverse_to_last_write(specs):
    """Runs backwards to the latest write to any of the memory specs (gdb expressions),
    with write watchpoints that are removed afterwards. Returns the index of the spec
    written, or None when the start of the recording came first."""
    watchpoints = []
    try:
        for spec in specs:
            wp = gdb.Breakpoint(spec, type=gdb.BP_WATCHPOINT, wp_class=gdb.WP_WRITE,
                                internal=True)
            watchpoints.append(wp)
            if wp.type != gdb.BP_HARDWARE_WATCHPOINT:
                raise gdb.GdbError(f"{spec} cannot be watched with a hardware watchpoint")
        try:
            gdb.execute("reverse-continue", to_string=True)
        except gdb.error as e:
            raise gdb.GdbError(f"reverse-continue failed: {e}") from None
        for index, wp in enumerate(watchpoints):
            if wp.hit_count:
                return index
        return None
    finally:
        for wp in watchpoints:
            if wp.is_valid():
                wp.delete()


def location():
    """(pc, function, file, line) of the current stop."""
    frame = gdb.newest_frame()
    sal = frame.find_sal()
    function = frame.function()
    name = function.print_name if function is not None else (frame.name() or "??")
    filename = sal.symtab.filename if sal.symtab is not None else None
    return frame.pc(), name, filename, sal.line if sal.symtab is not None else 0


def source_text(filename, line):
    try:
        with open(filename, errors="replace") as f:
            for number, text in enumerate(f, 1):
                if number == line:
                    return text.rstrip("\n")
    except (OSError, TypeError):
        pass
    return None


def describe_location(pc, name, filename, line):
    where = f"pc {pc:#x} in {name}"
    if filename:
        where += f" at {filename}:{line}"
    return where


# ---------------------------------------------------------------------------- last


class LastCommand(gdb.Command):
    """Go back to the last write of the memory an expression designates.

Usage: last EXPR
       last             (repeat the previous EXPR)

EXPR must be an lvalue (a variable, a member, *ptr, array[i]). A hardware write
watchpoint is set on its address and size, the replay runs backwards to the latest write
before the present, the watchpoint is removed, and the stop is shown like any other.
Repeating `last` (or pressing Enter) walks further back through the earlier writes. If
EXPR is out of scope where the previous `last` stopped, the address of the previous
evaluation is used. When no earlier write exists, the position does not change."""

    def __init__(self):
        super().__init__("last", gdb.COMMAND_RUNNING, gdb.COMPLETE_EXPRESSION)
        self.previous = None  # (expr text, addr, size, spec)

    def invoke(self, argument, from_tty):
        _require_process()
        text = argument.strip()
        if not text:
            if self.previous is None:
                raise gdb.GdbError("Usage: last EXPR")
            text = self.previous[0]
        try:
            addr, size, spec = watch_spec(gdb.parse_and_eval(text))
        except gdb.error:
            if self.previous is None or self.previous[0] != text:
                raise
            _, addr, size, spec = self.previous
        if size > MAX_WATCH_BYTES:
            raise gdb.GdbError(f"{text} is {size} bytes; the debug registers watch at most "
                               f"{MAX_WATCH_BYTES}: ask for a member or an element")
        self.previous = (text, addr, size, spec)
        after = _value_text(spec)
        with user_breakpoints_disabled():
            origin = Origin()
            with quiet():
                written = reverse_to_last_write([spec])
                if written is None:
                    origin.restore()
        if written is None:
            gdb.write(f"No earlier write to {text} in the recording.\n")
            return
        before = _value_text(spec)
        gdb.write(f"last: this write changed {text} ({size} bytes at {addr:#x}) "
                  f"from {before} to {after}\n")
        show_stop()


def _value_text(spec):
    try:
        return str(gdb.parse_and_eval(spec))
    except gdb.error:
        return "<unreadable>"


# ---------------------------------------------------------------------------- leak-roots


def chunk_size(addr):
    """The usable size of the glibc malloc chunk at addr, from its header (the word at
    addr-8: chunk size with flag bits 0-2; an mmapped chunk has bit 1 and 16 bytes of
    overhead, others 8). None when the header does not look like one."""
    try:
        header = struct.unpack("<Q", bytes(gdb.selected_inferior().read_memory(addr - 8, 8)))[0]
    except (gdb.MemoryError, gdb.error):
        return None
    size = header & ~7
    if size < 32 or size % 16 or size > 1 << 40:
        return None
    return size - (16 if header & 2 else 8)


class LeakGraph:
    """Leaked objects [addr, addr+size) and the pointers among them."""

    def __init__(self, objects):
        self.objects = sorted(objects.items())  # [(addr, size)]
        self.starts = [a for a, _ in self.objects]
        self.size = dict(self.objects)
        self.edges = {a: [] for a in self.starts}  # holder object -> [(offset, target)]
        self.incoming = {a: [] for a in self.starts}  # target -> [(holder object, offset)]

    def owner(self, value):
        """The leaked object whose memory contains value, or None."""
        index = bisect.bisect_right(self.starts, value) - 1
        if index >= 0:
            start, size = self.objects[index]
            if start <= value < start + size:
                return start
        return None

    def add_memory(self, addr, data):
        """Adds the references found in object addr's memory."""
        count = len(data) // WORD
        for index, (value,) in enumerate(struct.iter_unpack("<Q", data[:count * WORD])):
            target = self.owner(value)
            if target is not None and target != addr:
                self.edges[addr].append((index * WORD, target))
                self.incoming[target].append((addr, index * WORD))

    def roots(self):
        return [a for a in self.starts if not self.incoming[a]]

    def reachable(self, starts):
        seen = set(starts)
        todo = list(starts)
        while todo:
            for _, target in self.edges[todo.pop()]:
                if target not in seen:
                    seen.add(target)
                    todo.append(target)
        return seen

    def cycles(self, reached):
        """One cycle for each group of objects no root reaches (every such object has a
        referrer, so walking referrers backwards must come round)."""
        reached = set(reached)
        found = []
        for start in self.starts:
            if start in reached:
                continue
            path = [start]
            position = {start: 0}
            while True:
                holder = self.incoming[path[-1]][0][0]
                if holder in position:
                    loop = path[position[holder]:]
                    cycle = [loop[0]] + loop[:0:-1]  # forwards: holder -> target
                    break
                position[holder] = len(path)
                path.append(holder)
            group = self.reachable(cycle)
            reached |= group
            found.append((cycle, group))
        return found


def parse_refs(text):
    """`monitor refs` lines → [(holder address, mapping name, mapping start, mapping end)]."""
    hits = []
    for line in text.splitlines():
        words = line.split()
        if not words or not words[0].startswith("0x"):
            continue
        span = next((i for i in range(len(words) - 1, 0, -1) if _RANGE.match(words[i])), None)
        if span is None:
            continue
        start, end = (int(x, 16) for x in words[span].split("-"))
        hits.append((int(words[0], 16), " ".join(words[1:span]), start, end))
    return hits


def read_addresses(arguments):
    """ADDR... (gdb expressions) or -f FILE (one address per line; # comments)."""
    argv = gdb.string_to_argv(arguments)
    if not argv:
        raise gdb.GdbError("Usage: leak-roots ADDR... | leak-roots -f FILE")
    if argv[0] == "-f":
        if len(argv) != 2:
            raise gdb.GdbError("Usage: leak-roots -f FILE")
        addresses = []
        with open(os.path.expanduser(argv[1])) as f:
            for number, line in enumerate(f, 1):
                line = line.split("#", 1)[0].strip()
                if not line:
                    continue
                try:
                    addresses.append(int(line.split()[0].rstrip(",:"), 0))
                except ValueError:
                    raise gdb.GdbError(f"{argv[1]}:{number}: not an address: {line}") from None
        return addresses
    return [int(gdb.parse_and_eval(word).cast(gdb.lookup_type("unsigned long")))
            for word in argv]


class LeakRootsCommand(gdb.Command):
    """Report the roots of a set of leaked objects and where their last references were stored.

Usage: leak-roots ADDR...
       leak-roots -f FILE     (one leaked address per line, e.g. from a leak checker)

At the current point (typically the end of the recording), each leaked object is taken to
be [ADDR, ADDR+SIZE), SIZE being the usable size of its glibc malloc chunk (the size word
at ADDR-8, flag bits cleared, minus the chunk overhead; 8 bytes when that word does not
look like a chunk header). An object referenced by a pointer (to its start or inside it)
stored in another leaked object's memory is reachable from it; the roots are the leaked
objects no other leaked object references. For each root, `monitor refs` finds the words
of memory still holding a pointer to it (outside the leaked objects; heap, globals and
mappings first, the stack only when nothing else holds one); the replay runs backwards to
the latest write to those words, and that store's pc, function and source line are
reported. Objects no root reaches form cycles: one cycle is reported for each such group,
with the last external reference to a member. The replay comes back to where it was."""

    def __init__(self):
        super().__init__("leak-roots", gdb.COMMAND_DATA)
        self.report = []

    def emit(self, text):
        """The report is printed at the end, after the stops gdb announces on the way."""
        self.report.append(text)

    def invoke(self, argument, from_tty):
        self.dont_repeat()
        _require_process()
        self.report = []
        try:
            self.analyse(read_addresses(argument))
        finally:
            gdb.write("".join(self.report))
            self.report = []

    def analyse(self, addresses):
        objects = {}
        unknown = 0
        for addr in addresses:
            size = chunk_size(addr)
            if size is None:
                unknown += 1
                size = WORD
            objects[addr] = size
        graph = LeakGraph(objects)
        inferior = gdb.selected_inferior()
        for addr, size in graph.objects:
            try:
                graph.add_memory(addr, bytes(inferior.read_memory(addr, size)))
            except gdb.MemoryError:
                unknown += 1
        references = sum(len(e) for e in graph.edges.values())
        note = (f" ({unknown} without a readable malloc header: taken as 8 bytes)"
                if unknown else "")
        self.emit(f"leak-roots: {len(graph.objects)} leaked objects, {references} "
                  f"references among them{note}\n")
        roots = graph.roots()
        reached = graph.reachable(roots)
        cycles = graph.cycles(reached)
        gdb.write(f"leak-roots: {len(roots)} root(s) and {len(cycles)} unrooted cycle(s); "
                  "searching backwards for their last references, then returning here\n")
        origin = None
        with user_breakpoints_disabled():
            try:
                with quiet():
                    origin = Origin()
                for root in roots:
                    reach = len(graph.reachable([root]))
                    self.emit(f"root {root:#x} ({graph.size[root]} bytes), reaches {reach} "
                              f"leaked object{'' if reach == 1 else 's'}\n")
                    self.report_last_reference(graph, [root], origin, "last reference")
                if not roots:
                    self.emit("no roots: every leaked object is referenced by another one\n")
                for cycle, group in cycles:
                    ring = " -> ".join(f"{a:#x}" for a in cycle + cycle[:1])
                    self.emit(f"cycle of {len(cycle)} objects (reaching {len(group)}): "
                              f"{ring}\n")
                    for i, holder in enumerate(cycle):
                        target = cycle[(i + 1) % len(cycle)]
                        offset = next(o for o, t in graph.edges[holder] if t == target)
                        self.emit(f"  {holder:#x}+{offset:#x} holds {target:#x}\n")
                    self.report_last_reference(graph, cycle, origin,
                                               "last external reference")
            finally:
                if origin is not None:
                    with quiet():
                        origin.restore()

    def report_last_reference(self, graph, members, origin, label):
        """Finds memory outside the leaked objects that holds a pointer to one of members,
        goes back to the latest store into it, reports it and returns to origin."""
        rsp = int(gdb.newest_frame().read_register("rsp"))
        for target in members:
            holders = [h for h in parse_refs(monitor(f"refs {target:#x}"))
                       if graph.owner(h[0]) is None]
            if holders:
                break
        else:
            which = " or ".join(f"{m:#x}" for m in members[:4])
            self.emit(f"  {label}: no memory outside the leaked objects holds a pointer to "
                      f"{which} now (it was overwritten, or lived only in registers)\n")
            return

        def rank(hit):
            if hit[1] != "[stack]":
                return 0
            return 1 if hit[0] >= rsp else 2  # live stack before dead stack

        best = min(rank(h) for h in holders)
        watched = [h for h in holders if rank(h) == best][:MAX_WATCHED_HOLDERS]
        specs = [f"{{unsigned long}} {h[0]:#x}" for h in watched]
        try:
            with quiet():
                index = reverse_to_last_write(specs)
                if index is not None:
                    pc, name, filename, line = location()
        finally:
            with quiet():
                origin.restore()
        if index is None:
            self.emit(f"  {label} to {target:#x}: held at {_holder_text(watched[0])}, not "
                      "written since the start of the recording\n")
        else:
            where = describe_location(pc, name, filename, line)
            self.emit(f"  {label} to {target:#x} stored at {where}\n")
            text = source_text(filename, line) if filename else None
            if text is not None:
                self.emit(f"    {line}\t{text}\n")
            self.emit(f"    into {_holder_text(watched[index])}, which still holds it\n")
        others = [h for h in holders if h is not watched[index or 0]]
        if others:
            shown = ", ".join(_holder_text(h) for h in others[:4])
            more = f" and {len(others) - 4} more" if len(others) > 4 else ""
            self.emit(f"    also held at {shown}{more}\n")


def _holder_text(hit):
    holder, name, start, _ = hit
    return f"{holder:#x} ({name}+{holder - start:#x})"


# ---------------------------------------------------------------------------- rr names


class MonitorAlias(gdb.Command):
    """Runs the rrgdb monitor command of the same name."""

    def __init__(self, name, command_class, restarts=False):
        super().__init__(name, command_class)
        self.name = name
        self.restarts = restarts

    def invoke(self, argument, from_tty):
        self.dont_repeat()
        _require_process()
        text = monitor(f"{self.name} {argument}".strip())
        gdb.write(text)
        if self.restarts and text.startswith("Restarted"):
            _flush_caches()
            show_stop()


class WhenCommand(MonitorAlias):
    """Print the current event number of the replay (rr's `when`)."""

    def __init__(self):
        super().__init__("when", gdb.COMMAND_STATUS)


class CheckpointCommand(MonitorAlias):
    """Make a checkpoint of the replay here and print its number (rr's `checkpoint`)."""

    def __init__(self):
        super().__init__("checkpoint", gdb.COMMAND_RUNNING)


class RestartCommand(MonitorAlias):
    """Go to checkpoint N (rr's `restart N`; no N: the start of the replay)."""

    def __init__(self):
        super().__init__("restart", gdb.COMMAND_RUNNING, restarts=True)


class InfoCheckpointsCommand(MonitorAlias):
    """List the replay's checkpoints (rr's `info checkpoints`)."""

    def __init__(self):
        super().__init__("info checkpoints", gdb.COMMAND_STATUS)


class DeleteCheckpointCommand(MonitorAlias):
    """Forget checkpoint N (rr's `delete checkpoint N`)."""

    def __init__(self):
        super().__init__("delete checkpoint", gdb.COMMAND_RUNNING)


LastCommand()
LeakRootsCommand()
WhenCommand()
CheckpointCommand()
RestartCommand()
InfoCheckpointsCommand()
DeleteCheckpointCommand()
