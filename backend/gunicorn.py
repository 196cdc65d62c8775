"""Entry for gunicorn's aiohttp worker (SPEC §10):

    gunicorn 'backend.gunicorn:app' --worker-class aiohttp.GunicornWebWorker --workers 2 --bind 127.0.0.1:8080

DATABASE_URL and REDIS_URL must be set (gunicorn starts no embedded servers). Each worker runs
the migrations first; the advisory lock makes all but the first a no-op.
"""

from __future__ import annotations

from aiohttp import web

from backend import logs
from backend.app import create_app
from backend.config import Config
from backend.migrations import migrate


async def app() -> web.Application:
    """Build one worker's application."""
    config = Config.from_env()
    if config.database_url is None or config.redis_url is None:
        raise RuntimeError("gunicorn needs DATABASE_URL and REDIS_URL; use run.py for embedded servers")
    logs.configure(config.log_level)
    await migrate(config.database_url)
    return create_app(config)
