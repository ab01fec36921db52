"""Running one side of a benchmark in a process of its own, so its time and peak memory are its alone."""

from __future__ import annotations

import subprocess
import sys

# A Python expression for the process's own peak resident memory in KiB (VmHWM): ru_maxrss would carry the
# parent's size over fork and exec.
PEAK = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"


def run(code: str, *args: str) -> list[str]:
    """Run ``code`` with ``args`` in a new interpreter; the words of the last line it prints."""
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"benchmark step failed:\n{done.stderr}")
    return done.stdout.strip().splitlines()[-1].split()
