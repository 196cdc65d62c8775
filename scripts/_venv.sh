# Sourced by scripts/run and scripts/test: create .venv if missing and (re)install the project
# when setup.cfg changed since the last install. $1 = the pip extra to install ("" or "test").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
extra="${1:-}"
stamp="$VENV/.installed-${extra:-base}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ "$ROOT/setup.cfg" -nt "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >/dev/null 2>&1 || true
  target="$ROOT"
  [ -n "$extra" ] && target="$ROOT[$extra]"
  "$VENV/bin/python" -m pip install --quiet -e "$target" 2>&1 | grep -v "^WARNING: Location" || true
  "$VENV/bin/python" -c "import backend, aiohttp, sqlalchemy, asyncpg, redis" 
  touch "$stamp"
fi
