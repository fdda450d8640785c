"""`make` installs on Python 3.11 only: python3.11 when there is one, a clear refusal for any
other, and a .venv of another version rebuilt rather than reused (an install in it fails on
every run). Run on the real Makefile, with stand-in interpreters on PATH."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stand_in(path: Path, version: str) -> Path:
    """An executable that answers the version question as that Python would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {version}\n")
    path.chmod(0o755)
    return path


def make(tmp_path: Path, *args: str, path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = f"{path}{os.pathsep}{env['PATH']}"
    env.pop("PYTHON", None)
    return subprocess.run(
        ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "-C", str(ROOT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_another_python_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    python = stand_in(tmp_path / "bin" / "python3", "3.12")
    result = make(tmp_path, "venv", f"PYTHON={python}", f"VENV={tmp_path / 'venv'}")
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert f"This project needs Python 3.11; {python} is 3.12." in said
    assert "make PYTHON=/path/to/python3.11" in said
    assert not (tmp_path / "venv").exists()


def test_python311_is_chosen_and_a_venv_of_another_version_is_rebuilt(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    stand_in(bin_dir / "python3", "3.12")  # what `python3` is on many machines now
    (bin_dir / "python3.11").symlink_to(sys.executable)
    venv = tmp_path / "venv"
    stand_in(venv / "bin" / "python", "3.12")  # left by an earlier install with python3
    result = make(tmp_path, "venv", f"VENV={venv}", path=bin_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{venv} is Python 3.12, not 3.11: rebuilding it." in result.stdout
    rebuilt = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert rebuilt.stdout.strip() == "(3, 11)"
    again = make(tmp_path, "venv", f"VENV={venv}", path=bin_dir)
    assert again.returncode == 0 and "rebuilding" not in again.stdout  # kept once right
