"""Every backend module imports on its own, and the declared layers hold (issue: import cycles).

A cycle shows only when a module is imported first: `import backend.sharing` used to fail in a
fresh interpreter while the app started fine because fleet happened to be imported before it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import backend

ROOT = Path(backend.__file__).resolve().parent.parent

# Runs in a child interpreter: import each module with no backend module loaded before it (third-
# party packages stay cached, so this costs one interpreter start, not one per module).
_IMPORT_EACH = """
import importlib, json, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "backend" or m.startswith("backend.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=3)
print(json.dumps(failed))
"""


def backend_modules() -> list[str]:
    names = []
    for path in sorted((ROOT / "backend").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_backend_module_imports_first_in_a_fresh_interpreter() -> None:
    modules = backend_modules()
    assert len(modules) > 50 and "backend.sharing" in modules
    result = subprocess.run([sys.executable, "-c", _IMPORT_EACH, json.dumps(modules)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120, check=True)
    failed = json.loads(result.stdout.strip().splitlines()[-1])
    assert failed == {}, "\n".join(f"{name}:\n{trace}" for name, trace in failed.items())


def test_import_contracts_hold() -> None:
    """The layers, the domains' independence and auth's own tables, declared in setup.cfg ([importlinter])."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout and "3 kept" in result.stdout
