"""run.py create-app (SPEC §1.3, §11.3); registered by backend.cli."""

from __future__ import annotations

import argparse
import asyncio
import sys

from backend.callup import apps
from backend.config import Config
from backend.db import make_engine
from backend.embedded_share import services
from backend.migrations import migrate


async def _create_app(config: Config, name: str) -> tuple[int, str]:
    assert config.database_url is not None
    engine = make_engine(config.database_url, pool_size=1, max_overflow=0)
    try:
        row = await apps.create(engine, name)
    finally:
        await engine.dispose()
    return int(row["id"]), str(row["token"])


def create_app_command(args: argparse.Namespace, config: Config) -> int:
    """Create a CallUp app; prints `id: <n>` and `token: <uuid>` on their own lines (SPEC §11.3)."""
    name = args.name.strip()
    if not name:
        print("create-app: --name must not be empty", file=sys.stderr)
        return 1
    with services(config, args.data_dir) as ready:
        assert ready.database_url is not None
        asyncio.run(migrate(ready.database_url))   # a fresh embedded database has no tables yet
        app_id, token = asyncio.run(_create_app(ready, name))
    print(f"id: {app_id}")
    print(f"token: {token}")
    return 0
