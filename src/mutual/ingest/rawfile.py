"""Raw files: archive them content-addressed before anything parses them, and make a clean text copy.

Reading is chunked, so a file of any size costs a few megabytes of memory.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHUNK = 8 << 20


@dataclass(frozen=True)
class RawFile:
    """A file as archived: its hash, size, line count and whether it is clean UTF-8 text."""

    sha256: str
    size: int
    path: Path
    newlines: int
    ends_with_newline: bool
    utf8: bool
    has_nul: bool
    bom: str | None
    first_bad_byte: int | None

    @property
    def lines(self) -> int:
        return self.newlines + (0 if self.ends_with_newline or self.size == 0 else 1)


def _bom(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def archive(src: Path, archive_dir: Path) -> RawFile:
    """Copy ``src`` into ``archive_dir/ab/<sha256>`` (atomically: write, fsync, rename) while hashing it
    and checking its text encoding in the same pass."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines, size, utf8, has_nul, bad_at, last = 0, 0, True, False, None, b""
    archive_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=archive_dir, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as out, src.open("rb") as inp:
            head = b""
            while chunk := inp.read(CHUNK):
                if not head:
                    head = chunk[:4]
                digest.update(chunk)
                out.write(chunk)
                newlines += chunk.count(b"\n")
                has_nul = has_nul or b"\x00" in chunk
                if utf8:
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as exc:
                        utf8, bad_at = False, size + exc.start
                size += len(chunk)
                last = chunk[-1:]
            if utf8:
                try:
                    decoder.decode(b"", final=True)
                except UnicodeDecodeError:
                    utf8, bad_at = False, size
            out.flush()
            os.fsync(out.fileno())
        sha = digest.hexdigest()
        final = archive_dir / sha[:2] / sha
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
    bom = _bom(head)
    return RawFile(sha, size, final, newlines, last == b"\n", utf8 and bom != "utf-16", has_nul, bom, bad_at)


def text_copy(raw: RawFile, tmp_dir: Path) -> Path:
    """A UTF-8 file without NUL bytes to parse: the archived file itself when it is already that, else a
    transcoded copy (UTF-16 decoded; undecodable bytes and NULs replaced by U+FFFD, so the values around
    them survive and the damaged cells fail their checks by name)."""
    if raw.utf8 and not raw.has_nul:
        return raw.path
    tmp_dir.mkdir(parents=True, exist_ok=True)
    out_path = tmp_dir / f"{raw.sha256}.utf8.csv"
    encoding = "utf-16" if raw.bom == "utf-16" else "utf-8"
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    with raw.path.open("rb") as inp, out_path.open("w", encoding="utf-8", newline="") as out:
        while chunk := inp.read(CHUNK):
            out.write(decoder.decode(chunk).replace("\x00", "\ufffd"))
        out.write(decoder.decode(b"", final=True))
    return out_path


def copy_out(raw: RawFile, dest: Path) -> None:
    shutil.copyfile(raw.path, dest)
