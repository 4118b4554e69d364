"""TraceReader: opens a trace directory, checks it, and yields its frames and files."""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import zstandard

from . import _layout as L
from ._codec import (
    FILE_ID,
    decode_complete,
    decode_header,
    decode_index,
    unpack_block_data,
    unpack_block_header,
)
from ._frame_codec import decode_frames
from ._frames import Frame, TraceError, TraceHeader


def _read(path: Path, missing: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise TraceError(f"{path}: {missing}") from None
    except OSError as e:
        raise TraceError(f"{path}: cannot read: {e.strerror}") from None


class TraceReader:
    """Reads a trace directory; every check failure raises TraceError with a one-line message.

    Opening checks the header (magic, version, crc) and, for a complete trace, that the
    events file has the size the completion marker recorded. Frames are checked block by
    block as frames() reaches them.
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise TraceError(f"{self.directory}: no such trace directory")
        header_path = self.directory / L.HEADER_FILE
        self.header: TraceHeader
        self.header, self.version = decode_header(
            _read(header_path, "not an rrgdb trace (no header file)"), str(header_path)
        )
        self._events = self.directory / L.EVENTS_FILE
        try:
            events_size = self._events.stat().st_size
        except OSError as e:
            raise TraceError(f"{self._events}: cannot open: {e.strerror}") from None
        marker = self.directory / L.COMPLETE_FILE
        self._expected_frames: int | None = None
        if marker.exists():
            frames, expected_size = decode_complete(_read(marker, "vanished"), str(marker))
            if events_size != expected_size:
                raise TraceError(
                    f"{self._events}: has {events_size} bytes but the trace was closed "
                    f"with {expected_size} (truncated or overwritten)"
                )
            self._expected_frames = frames
        self.complete: bool = self._expected_frames is not None
        self._decompressor = zstandard.ZstdDecompressor()
        self._file_sizes: dict[str, int] | None = None

    def frames(self) -> Iterator[Frame]:
        """The recorded frames in order.

        A torn final block of an incomplete trace (the recorder died while writing it) ends
        the iteration; anything else that does not check out raises TraceError.
        """
        try:
            events = self._events.open("rb")
        except OSError as e:
            raise TraceError(f"{self._events}: cannot open: {e.strerror}") from None
        number = 0
        with events:
            for block in itertools.count():
                where = f"{self._events}: block {block} (byte {events.tell()}, frame {number})"
                head_bytes = events.read(L.BLOCK_HEADER_SIZE)
                if not head_bytes:
                    break
                if len(head_bytes) < L.BLOCK_HEADER_SIZE:
                    self._torn(where)
                    return
                head = unpack_block_header(head_bytes, number, where)
                stored = events.read(head.stored_size)
                if len(stored) < head.stored_size:
                    self._torn(where)
                    return
                raw = unpack_block_data(head, stored, self._decompressor, where)
                yield from decode_frames(raw, number, head.frames, where, self.version)
                number += head.frames
        if self._expected_frames is not None and number != self._expected_frames:
            raise TraceError(
                f"{self._events}: holds {number} frames but the trace was closed with "
                f"{self._expected_frames}"
            )

    def _torn(self, where: str) -> None:
        if self.complete:
            raise TraceError(f"{where}: truncated")

    def file_names(self) -> dict[str, str]:
        """The paths the program knew its mapped files by → file ids (malformed lines,
        e.g. a torn last one, are skipped: names only help a debugger find files)."""
        names: dict[str, str] = {}
        try:
            data = (self.directory / L.FILES_DIR / L.FILES_NAMES).read_bytes()
        except OSError:
            return names
        for line in data.split(b"\n"):
            parts = line.split(b" ")
            if len(parts) == 2 and FILE_ID.fullmatch(parts[0].decode("ascii", "replace")):
                try:
                    names[os.fsdecode(bytes.fromhex(parts[1].decode("ascii")))] = \
                        parts[0].decode()
                except ValueError:
                    continue
        return names

    def file_path(self, file_id: str) -> Path:
        """The trace's copy of the file with this id, after a cheap check of its size."""
        if not FILE_ID.fullmatch(file_id):
            raise TraceError(f"{self.directory}: {file_id!r:.80} is not a file id")
        if self._file_sizes is None:
            index = self.directory / L.FILES_DIR / L.FILES_INDEX
            data = _read(index, "missing (no file index)")
            self._file_sizes = decode_index(data, not self.complete, str(index))
        size = self._file_sizes.get(file_id)
        if size is None:
            raise TraceError(f"{self.directory}: file {file_id} is not in the trace")
        path = self.directory / L.FILES_DIR / file_id
        try:
            st = path.stat()
        except OSError as e:
            raise TraceError(f"{path}: cannot open: {e.strerror}") from None
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            raise TraceError(f"{path}: is not the recorded {size}-byte file")
        return path
