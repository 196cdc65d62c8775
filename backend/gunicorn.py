"""Entry for gunicorn's aiohttp worker (SPEC §10):

    gunicorn 'backend.gunicorn:app' --worker-class aiohttp.GunicornWebWorker --workers 2 --bind 127.0.0.1:8080

DATABASE_URL and REDIS_URL must be set (gunicorn starts no embedded servers). Each worker runs
the migrations first; the advisory lock makes all but the first a no-op.
"""

from __future__ import annotations

from aiohttp import web

from backend import logs
from backend.api.protocol import SurfaceAppRunner
from backend.app import create_app, freeze_startup_heap
from backend.config import Config
from backend.migrations import migrate

# Requests and websockets get this long to finish on SIGTERM: within gunicorn's default
# graceful_timeout (30 s), as aiohttp's own worker takes 95 % of it.
SHUTDOWN_TIMEOUT = 28.0

async def app() -> web.AppRunner:
    """Build one worker's application, in the runner that answers malformed requests in the surface
    style (backend.api.protocol); gunicorn's worker accepts a runner from the factory."""
    config = Config.from_env()
    if config.database_url is None or config.redis_url is None:
        raise RuntimeError("gunicorn needs DATABASE_URL and REDIS_URL; use run.py for embedded servers")
    logs.configure(config.log_level)
    await migrate(config.database_url)
    application = create_app(config)
    application.on_startup.append(freeze_startup_heap)
    return SurfaceAppRunner(application, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT,
                            keepalive_timeout=config.header_timeout)
