"""Installing the project prints no setuptools warnings (issue 12: ~40 lines of BuildBackendWarning on
the first `./scripts/run` and `./scripts/test`), and the wheel still carries the dashboard's files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_build_is_quiet_and_keeps_static_files(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "backend", source / "backend", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(source),
                           "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "BuildBackendWarning" not in output and "Package would be ignored" not in output, output
    wheel = next((tmp_path / "dist").glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    static = sorted(path.name for path in (ROOT / "backend" / "ops" / "static").iterdir() if path.is_file())
    assert static and all(f"backend/ops/static/{name}" in names for name in static), names
