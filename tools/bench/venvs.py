"""One virtual environment per peer, made with uv under ``.bench/venvs`` (git-ignored)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["ensure", "freeze"]

LAYOUT = 2
"""Bumped when the way environments are made changes, so old ones are rebuilt."""


def _uv() -> str:
    uv = shutil.which("uv")
    if not uv:
        raise SystemExit("uv is not on PATH: the bench installs each peer with uv")
    return uv


def ensure(root: Path, name: str, requirements: tuple[str, ...], *, log: bool = True) -> str:
    """The interpreter of venv ``name`` with exactly ``requirements`` installed (reused when
    an earlier run installed the same list)."""
    venv = root / name
    python = venv / "bin" / "python"
    stamp = venv / ".bench-requirements.json"
    wanted = {
        "python": sys.version.split()[0],
        "requirements": list(requirements),
        "layout": LAYOUT,
    }
    if python.exists() and stamp.exists() and json.loads(stamp.read_text()) == wanted:
        return str(python)
    if log:
        print(f"  installing {name}: {' '.join(requirements)}", flush=True)
    if venv.exists():
        shutil.rmtree(venv)
    # The peers run on the same interpreter version as Q (the workspace's).
    subprocess.run([_uv(), "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        # Byte-compiled at install: otherwise every worker start would compile the library
        # again (or write .pyc files during the first measured run).
        [
            _uv(),
            "pip",
            "install",
            "-q",
            "--compile-bytecode",
            "--python",
            str(python),
            *requirements,
        ],
        check=True,
    )
    stamp.write_text(json.dumps(wanted))
    return str(python)


def freeze(python: str) -> list[str]:
    """What is installed in an environment, for the JSON record."""
    out = subprocess.run(
        [_uv(), "pip", "freeze", "--python", python], capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def byte_compile(python: str, extra: list[Path] | None = None) -> None:
    """Write .pyc files for an environment's packages (and ``extra`` source trees).

    Without them every process the bench starts would compile its imports from source first
    (this machine sets PYTHONDONTWRITEBYTECODE, so nothing would ever be cached): start-up
    would then measure the compiler, not the queue.
    """
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    targets = [purelib, *(str(p) for p in extra or [])]
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j", "0", *targets],
        check=False,  # a file that does not compile (a test fixture, say) is not our concern
        stdout=subprocess.DEVNULL,
    )
