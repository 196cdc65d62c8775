"""`run.py create-user` / `create-app` never start a second, empty database (issue 12): without
DATABASE_URL they attach to the embedded data of --data-dir, and a data dir where no server ever ran
is refused with a message naming the flag."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL", "DATA_DIR"}}
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, env={**env, "LOG_LEVEL": "WARNING"},
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("command", [
    ["create-user", "--login", "boss", "--password", "boss-password-1", "--role", "admin"],
    ["create-app", "--name", "App"],
])
@pytest.mark.parametrize("data_dir", [None, "elsewhere"])
def test_a_data_dir_without_a_server_is_refused(tmp_path: Path, command: list[str], data_dir: str | None) -> None:
    args = [*command, "--data-dir", str(tmp_path / data_dir)] if data_dir else command
    done = run(tmp_path, *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "--data-dir" in done.stderr and "DATABASE_URL" in done.stderr
    assert done.stdout == ""                          # no id of a user nobody will see
    assert not (tmp_path / "var").exists() and not (tmp_path / "elsewhere").exists()
