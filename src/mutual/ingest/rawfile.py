"""Raw files: archive them content-addressed before anything parses them, and make a clean text copy.

Reading is chunked, so a file of any size costs a few megabytes of memory.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
import shutil
import tempfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

CHUNK = 8 << 20


@dataclass(frozen=True)
class RawFile:
    """A file as archived: its hash, size, line count and whether it is clean UTF-8 text.

    Lines end at ``\\n``. Line and carriage-return counts are of the file's text (for UTF-16, once decoded)."""

    sha256: str
    size: int
    path: Path
    newlines: int
    ends_with_newline: bool
    utf8: bool
    has_nul: bool
    bom: str | None
    first_bad_byte: int | None
    carriage_returns: int = 0
    crlf: int = 0

    @property
    def lines(self) -> int:
        return self.newlines + (0 if self.ends_with_newline or self.size == 0 else 1)

    @property
    def plain_newlines(self) -> bool:
        """Every line ends alike, all with ``\\n`` or all with ``\\r\\n``, and no other carriage return is in
        the file. Only then does a CSV reader split it into exactly its lines: readers that also end a line at a
        lone ``\\r``, or that guess one line ending for the whole file, otherwise shift every later line number."""
        return self.carriage_returns == self.crlf and self.crlf in (0, self.newlines)


class _LineStats:
    """Line feeds and carriage returns over a stream of chunks, counting a CR LF split between two chunks."""

    def __init__(self) -> None:
        self.newlines = self.carriage_returns = self.crlf = 0
        self.last = b""

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self.newlines += data.count(b"\n")
        crs = data.count(b"\r") if b"\r" in data else 0  # a search stops at the first; most files have none
        self.carriage_returns += crs
        # a two-byte search is slow: most files have no carriage return to pair
        self.crlf += (data.count(b"\r\n") if crs else 0) + (self.last == b"\r" and data[:1] == b"\n")
        self.last = data[-1:]


def _bom(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep(archive_dir: Path) -> None:
    """Remove partial copies left by processes that died while archiving (``.incoming-<pid>-*``, the pid no
    longer running). A live process's copy is never touched."""
    for stale in archive_dir.glob(".incoming-*-*"):
        pid = stale.name.split("-")[1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)


def _copy(inp: BinaryIO, out: BinaryIO) -> None:
    """Copy a whole file in the kernel where the system can (``copy_file_range``: the bytes never pass through
    Python, and file systems that clone share them), else chunk by chunk. Both files are unbuffered."""
    copy_range = getattr(os, "copy_file_range", None)
    if copy_range is not None:
        try:
            while copy_range(inp.fileno(), out.fileno(), 1 << 30):
                pass
            return
        except OSError:  # not between these two files (say, across file systems on an old kernel): start again
            inp.seek(0)
            out.seek(0)
            out.truncate()
    shutil.copyfileobj(inp, out, CHUNK)


@dataclass
class _Scan:
    """What one pass over a file's bytes finds: its hash, size, line endings and whether it is clean UTF-8."""

    sha256: str = ""
    size: int = 0
    head: bytes = b""
    utf8: bool = True
    has_nul: bool = False
    bad_at: int | None = None
    stats: _LineStats = field(default_factory=_LineStats)


def _scan(path: Path) -> _Scan:
    """Hash and check a file in chunks; the hash runs on a second thread (it releases the interpreter's lock)
    while this one counts lines and checks the encoding of the same chunk."""
    found = _Scan()
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf16: codecs.IncrementalDecoder | None = None
    with path.open("rb") as inp, ThreadPoolExecutor(1) as hasher:
        hashing: deque[Future[None]] = deque()
        while chunk := inp.read(CHUNK if found.head else max(CHUNK, 4)):  # a whole byte-order mark first
            if not found.head:
                found.head = chunk[:4]
                if _bom(found.head) == "utf-16":
                    utf16 = codecs.getincrementaldecoder("utf-16")(errors="replace")
            hashing.append(hasher.submit(digest.update, chunk))
            if len(hashing) > 2:  # at most a few chunks in memory
                hashing.popleft().result()
            # a UTF-16 file's line breaks are counted in its text: its bytes hold 0x0A inside other characters
            found.stats.feed(chunk if utf16 is None else utf16.decode(chunk).encode())
            found.has_nul = found.has_nul or b"\x00" in chunk
            held = len(decoder.getstate()[0])  # bytes of a character begun in the last chunk
            if found.utf8 and (held or not chunk.isascii()):  # ASCII is UTF-8: most files need no decoding
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    found.utf8, found.bad_at = False, found.size - held + exc.start
            found.size += len(chunk)
        for done in hashing:
            done.result()
    if utf16 is not None:
        found.stats.feed(utf16.decode(b"", final=True).encode())
    if found.utf8:
        held = len(decoder.getstate()[0])
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            found.utf8, found.bad_at = False, found.size - held
    found.sha256 = digest.hexdigest()
    return found


def archive(src: Path, archive_dir: Path) -> RawFile:
    """Copy ``src`` into ``archive_dir/ab/<sha256>`` (atomically: copy, fsync, rename), hashing and checking the
    copy's own bytes, so what is named and read is exactly what was archived even if ``src`` changes meanwhile."""
    archive_dir.mkdir(parents=True, exist_ok=True)
    _sweep(archive_dir)
    fd, tmp_name = tempfile.mkstemp(dir=archive_dir, prefix=f".incoming-{os.getpid()}-")
    try:
        with os.fdopen(fd, "wb", buffering=0) as out, src.open("rb", buffering=0) as inp:
            _copy(inp, out)
            os.fsync(out.fileno())
        found = _scan(Path(tmp_name))
        final = archive_dir / found.sha256[:2] / found.sha256
        final.parent.mkdir(exist_ok=True)
        if final.exists():
            os.unlink(tmp_name)
        else:
            os.chmod(tmp_name, 0o444)
            os.replace(tmp_name, final)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    bom, stats = _bom(found.head), found.stats
    return RawFile(found.sha256, found.size, final, stats.newlines, stats.last == b"\n", found.utf8 and bom != "utf-16",
                   found.has_nul, bom, found.bad_at, stats.carriage_returns, stats.crlf)


_CRS_BEFORE_LF = re.compile("\r+\n")


def _clean(text: str) -> tuple[str, str]:
    """``text`` ready to write, and the carriage returns at its end, held back until what follows is known."""
    body = text.rstrip("\r")
    return _CRS_BEFORE_LF.sub("\n", body).replace("\r", "\ufffd").replace("\x00", "\ufffd"), text[len(body):]


def text_copy(raw: RawFile, tmp_dir: Path) -> Path:
    """A UTF-8 file without NUL bytes and with plain line endings to parse: the archived file itself when it is
    already that, else a transcoded copy. UTF-16 is decoded; undecodable bytes, NULs and carriage returns that
    do not end a line are replaced by U+FFFD, so the values around them survive and the damaged cells fail their
    checks by name; carriage returns that end a line (before ``\\n`` or at the end of the file) are dropped.
    The copy has the same lines as the file, in the same places."""
    if raw.utf8 and not raw.has_nul and raw.plain_newlines:
        return raw.path
    tmp_dir.mkdir(parents=True, exist_ok=True)
    out_path = tmp_dir / f"{raw.sha256}.utf8.csv"
    encoding = "utf-16" if raw.bom == "utf-16" else "utf-8"
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    pending = ""
    with raw.path.open("rb") as inp, out_path.open("w", encoding="utf-8", newline="") as out:
        while chunk := inp.read(CHUNK):
            text, pending = _clean(pending + decoder.decode(chunk))
            out.write(text)
        out.write(_clean(pending + decoder.decode(b"", final=True))[0])
    return out_path


def copy_out(raw: RawFile, dest: Path) -> None:
    shutil.copyfile(raw.path, dest)
