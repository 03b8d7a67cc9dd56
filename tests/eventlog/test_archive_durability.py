"""The first segment's directory is durable: its name is synced in the data dir (strace)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

_WRITE = """
import sys
from pathlib import Path
from atlasd.eventlog.archive import write_segment
write_segment(Path(sys.argv[1]) / "archive", 1, 2, [b'{"seq":1}', b'{"seq":2}'])
"""


_CALLS = "trace=mkdir,mkdirat,openat,fsync,rename,renameat,renameat2"


def _traced(data_dir: Path, tmp_path: Path) -> list[str]:
    """The system calls of a first segment's write: mkdir, open, fsync, rename."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed")
    out = tmp_path / "trace"
    done = subprocess.run(
        [strace, "-f", "-e", _CALLS, "-o", str(out), sys.executable, "-c", _WRITE, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0 and "ptrace" in done.stderr:
        pytest.skip(f"strace cannot trace here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0, done.stderr
    return out.read_text().splitlines()


def _first(calls: list[str], pattern: str, after: int = -1) -> tuple[int, re.Match[str]]:
    for i, call in enumerate(calls):
        found = re.search(pattern, call)
        if i > after and found is not None:
            return i, found
    raise AssertionError(f"no call matches {pattern!r} after line {after}")


def test_the_first_segment_syncs_the_archive_directorys_name(tmp_path: Path) -> None:
    """Creating ``archive/`` is followed by an fsync of the data dir, before the segment's
    rename: a power cut cannot keep the segment's record and lose its directory."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    calls = _traced(data_dir, tmp_path)
    made, _ = _first(calls, rf'mkdir(at)?\(.*"{data_dir}/archive".* += 0$')
    opened, fd = _first(calls, rf'openat\(.*"{data_dir}", [^)]*O_DIRECTORY.* += (\d+)$', made)
    synced, _ = _first(calls, rf"fsync\({fd.group(1)}\) += 0", opened)
    renamed, _ = _first(calls, r"^\d+ +rename(at2?)?\(.*\.tmp-")
    assert synced < renamed
