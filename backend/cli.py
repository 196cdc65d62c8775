"""The command line of run.py (SPEC §1.3): serve, migrate, create-user, create-app."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from backend import logs
from backend.auth.commands import create_user_command
from backend.callup.commands import create_app_command
from backend.config import Config, ConfigError
from backend.embedded_share import services
from backend.migrations import migrate

log = logging.getLogger("backend.cli")

Command = Callable[[argparse.Namespace, Config], int]


def serve(args: argparse.Namespace, config: Config) -> int:
    """Start the HTTP and websocket server."""
    from aiohttp import web

    from backend.app import create_app

    with services(config, args.data_dir) as ready:
        assert ready.database_url is not None
        asyncio.run(migrate(ready.database_url))
        if args.demo:
            from backend.demo import load_demo

            asyncio.run(load_demo(ready, f"http://{args.host}:{args.port}"))
        _install_uvloop()
        # run_app turns SIGINT/SIGTERM into a graceful shutdown (on_shutdown closes websockets
        # with 1001); the ExitStack in services() then stops the embedded servers.
        web.run_app(create_app(ready), host=args.host, port=args.port, access_log=None,
                    shutdown_timeout=5, print=lambda msg: log.info(msg.strip()))
    return 0


def _install_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def migrate_command(args: argparse.Namespace, config: Config) -> int:
    """Apply pending migrations and exit."""
    with services(config, args.data_dir) as ready:
        assert ready.database_url is not None
        applied = asyncio.run(migrate(ready.database_url))
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


COMMANDS: dict[str, Command] = {
    "serve": serve,
    "migrate": migrate_command,
    "create-user": create_user_command,
    "create-app": create_app_command,
}


def parser(config: Config) -> argparse.ArgumentParser:
    """The arguments of run.py; their defaults come from the environment through `config`."""
    root = argparse.ArgumentParser(prog="run.py", description="Realtime backend")
    sub = root.add_subparsers(dest="command")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, default=Path(config.data_dir),
                       help="where embedded PostgreSQL/Valkey keep their data (default ./var)")

    serve_p = sub.add_parser("serve", help="start the server (default)")
    common(serve_p)
    serve_p.add_argument("--host", default=config.host)
    serve_p.add_argument("--port", type=int, default=config.port)
    serve_p.add_argument("--demo", action="store_true", help="load demo data and print credentials")
    common(sub.add_parser("migrate", help="apply pending migrations and exit"))
    user_p = sub.add_parser("create-user", help="create a user")
    common(user_p)
    user_p.add_argument("--login", required=True)
    user_p.add_argument("--password", required=True)
    user_p.add_argument("--role", required=True, help="role name, e.g. admin, operator, driver, client")
    user_p.add_argument("--email")
    user_p.add_argument("--phone")
    user_p.add_argument("--name", default="")
    user_p.add_argument("--surname", default="")
    user_p.add_argument("--last-name", default="")
    app_p = sub.add_parser("create-app", help="create a CallUp app and print its token")
    common(app_p)
    app_p.add_argument("--name", required=True)
    return root


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-"):
        argv = ["serve", *argv]
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    args = parser(config).parse_args(argv)
    logs.configure(config.log_level)
    return COMMANDS[args.command](args, config)
