"""A job's output cut into lines: what the supervisor makes of the chunks it reads from a
terminal.

A line keeps its ``\\r``, tabs and trailing spaces; UTF-8 is decoded with replacement
characters for invalid bytes; a last line without a newline is still a line; a line longer
than ``MAX_LINE_BYTES`` once decoded (an invalid byte becomes a U+FFFD of 3 bytes) is split
into several, at a UTF-8 character boundary, each its own line.
"""

from __future__ import annotations

MAX_LINE_BYTES = 2 * 1024 * 1024


def cut_long_line(data: bytes) -> list[bytes]:
    """Split ``data`` into pieces of at most ``MAX_LINE_BYTES``, never inside a UTF-8 character."""
    pieces: list[bytes] = []
    while len(data) > MAX_LINE_BYTES:
        cut = MAX_LINE_BYTES
        # Back off over continuation bytes (0b10xxxxxx) so a character is not cut in two.
        while cut > MAX_LINE_BYTES - 3 and data[cut] & 0xC0 == 0x80:
            cut -= 1
        pieces.append(data[:cut])
        data = data[cut:]
    pieces.append(data)
    return pieces


def cut_long_text(text: str) -> list[str]:
    """``text`` in pieces of at most ``MAX_LINE_BYTES`` of UTF-8, cut between characters.  (On
    the decoded text: an invalid byte became a U+FFFD of 3 bytes.)"""
    if len(text) <= MAX_LINE_BYTES // 4:  # 4 bytes per character at most: it fits
        return [text]
    data = text.encode()
    return [text] if len(data) <= MAX_LINE_BYTES else [piece.decode() for piece in cut_long_line(data)]


class LineSplitter:
    """Turns one stream's chunks into lines (without their ``\\n``)."""

    def __init__(self) -> None:
        self.partial = b""

    def feed(self, chunk: bytes) -> list[str]:
        data = self.partial + chunk if self.partial else chunk
        end = data.rfind(b"\n")
        self.partial = data[end + 1 :]
        # All complete lines decoded at once: a ``\\n`` is never inside a UTF-8 sequence, so
        # this is what decoding line by line gives, without a call per line.
        lines = data[:end].decode(errors="replace").split("\n") if end >= 0 else []
        if end * 3 > MAX_LINE_BYTES:  # (else no line can reach the limit, even all U+FFFD)
            lines = [piece for line in lines for piece in cut_long_text(line)]
        if len(self.partial) > MAX_LINE_BYTES:
            *full, self.partial = cut_long_line(self.partial)
            lines += [piece for part in full for piece in cut_long_text(part.decode(errors="replace"))]
        return lines

    def finish(self) -> list[str]:
        """The last line, if the stream ended without a newline."""
        rest, self.partial = self.partial, b""
        return cut_long_text(rest.decode(errors="replace")) if rest else []
