"""The command line of run.py (SPEC §1.3): serve, migrate, create-user, create-app."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from backend import logs
from backend.auth.commands import create_user_command
from backend.callup.commands import create_app_command
from backend.config import Config, ConfigError
from backend.embedded_share import has_database, services
from backend.migrations import migrate

log = logging.getLogger("backend.cli")

Command = Callable[[argparse.Namespace, Config], int]


def serve(args: argparse.Namespace, config: Config) -> int:
    """Start the HTTP and websocket server: one process, or --workers N sharing the port."""
    from backend.serving import run_server, run_workers

    # The embedded servers are started here, once, by this process; workers only get their URLs.
    with services(config, args.data_dir) as ready:
        assert ready.database_url is not None
        asyncio.run(migrate(ready.database_url))
        if args.demo:
            from backend.demo import load_demo

            asyncio.run(load_demo(ready, f"http://{args.host}:{args.port}"))
        # Either way SIGINT/SIGTERM end in a graceful shutdown; services() then stops the embedded
        # servers, after the last worker is gone.
        if args.workers > 1:
            return run_workers(ready, args.host, args.port, args.workers)
        run_server(ready, args.host, args.port)
    return 0


def _workers(raw: str) -> int:
    """--workers: a whole number of processes, at least 1."""
    try:
        count = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {raw!r}") from None
    if count < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {count}")
    return count


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
    serve_p.add_argument("--workers", type=_workers, default=1,
                         help="processes sharing the port with SO_REUSEPORT (default 1)")
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
    if args.command in ATTACHING and config.database_url is None and not has_database(args.data_dir):
        print(no_data_message(args.command, args.data_dir), file=sys.stderr)
        return 2
    return COMMANDS[args.command](args, config)


# Commands that write into the data of a server: without DATABASE_URL they use (or start) the
# embedded PostgreSQL of --data-dir. A data dir where no server ever ran is refused instead of
# initialised: a new empty database there would take the user or app that the running server
# (on another data dir) then never sees.
ATTACHING = frozenset({"create-user", "create-app"})


def no_data_message(command: str, data_dir: Path) -> str:
    return (f"{command}: no database in {data_dir.resolve()} (no server has run there). Start the server "
            f"first (./scripts/run), name the data dir of the running server with --data-dir DIR, "
            f"or set DATABASE_URL.")
