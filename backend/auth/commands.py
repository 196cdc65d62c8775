"""run.py create-user (SPEC §1.3); registered by backend.cli."""

from __future__ import annotations

import argparse
import asyncio
import sys

from backend.auth.users import create_user
from backend.config import Config
from backend.db import make_engine
from backend.embedded_share import services
from backend.errors import ApiError
from backend.migrations import migrate


def _explain(err: ApiError) -> str:
    if err.fields:
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in err.fields.items())
    return err.message


async def _create_user(config: Config, args: argparse.Namespace) -> int:
    assert config.database_url is not None
    engine = make_engine(config.database_url, pool_size=1, max_overflow=0)
    try:
        row = await create_user(engine, config, login=args.login, password=args.password, role=args.role,
                                email=args.email, phone=args.phone, name=args.name, surname=args.surname,
                                last_name=args.last_name)
    finally:
        await engine.dispose()
    return int(row["id"])


def create_user_command(args: argparse.Namespace, config: Config) -> int:
    """Create a user with an argon2id password and print its id (client_status approved)."""
    with services(config, args.data_dir) as ready:
        assert ready.database_url is not None
        asyncio.run(migrate(ready.database_url))   # a fresh embedded database has no tables yet
        try:
            user_id = asyncio.run(_create_user(ready, args))
        except ApiError as err:
            print(f"create-user: {_explain(err)}", file=sys.stderr)
            return 1
    print(user_id)
    return 0

