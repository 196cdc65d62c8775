"""The command line of run.py (SPEC §1.3): serve, migrate, create-user, create-app."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from backend import logs
from backend.config import Config, ConfigError
from backend.embedded_share import SharedServers
from backend.migrations import migrate

log = logging.getLogger("backend.cli")

Command = Callable[[argparse.Namespace, Config], int]
COMMANDS: dict[str, Command] = {}
DOMAIN_COMMANDS = ("backend.auth.commands", "backend.callup.commands")


def command(name: str) -> Callable[[Command], Command]:
    """Register a sub-command; domains add theirs (create-user, create-app) the same way."""
    def register(func: Command) -> Command:
        COMMANDS[name] = func
        return func
    return register


@contextlib.contextmanager
def services(config: Config, data_dir: Path) -> Iterator[Config]:
    """Use (starting if needed) the embedded servers the configuration lacks; the last run.py on
    `data_dir` to exit stops them, whatever happens."""
    need_pg, need_valkey = config.database_url is None, config.redis_url is None
    if not (need_pg or need_valkey):
        yield config
        return
    with SharedServers(data_dir).use(postgres=need_pg, valkey=need_valkey) as (pg_url, valkey_url):
        yield dataclasses.replace(config, database_url=config.database_url or pg_url,
                                  redis_url=config.redis_url or valkey_url)


@command("serve")
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


@command("migrate")
def migrate_command(args: argparse.Namespace, config: Config) -> int:
    """Apply pending migrations and exit."""
    with services(config, args.data_dir) as ready:
        assert ready.database_url is not None
        applied = asyncio.run(migrate(ready.database_url))
    print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="run.py", description="Realtime backend")
    sub = root.add_subparsers(dest="command")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", type=Path, default=Path(os.environ.get("DATA_DIR", "./var")),
                       help="where embedded PostgreSQL/Valkey keep their data (default ./var)")

    serve_p = sub.add_parser("serve", help="start the server (default)")
    common(serve_p)
    serve_p.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve_p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
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
    args = parser().parse_args(argv)
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.log_level)
    # Domain commands register themselves on import; a domain not built yet simply has none.
    for module in DOMAIN_COMMANDS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module.startswith(exc.name):
                raise
    func = COMMANDS.get(args.command)
    if func is None:
        print(f"command {args.command!r} is not available in this build", file=sys.stderr)
        return 2
    return func(args, config)
