"""scripts/deploy/: compose.yaml, nginx.conf and the Dockerfile agree with each other and with Config.

This machine runs no containers, so the files are parsed (PyYAML, a small nginx tokenizer) and
checked for what a wrong edit would break: a service missing, an environment variable the app
does not read, an nginx upstream that names no app, a proxy limit out of step with the app's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from backend.config import Config

DEPLOY = Path(__file__).resolve().parents[2] / "scripts" / "deploy"
APPS = ("app-1", "app-2", "app-3")
VALKEYS = ("valkey-1", "valkey-2", "valkey-3")
GIVEN = {"JWT_SECRET": "deploy-test-" + "x" * 32}      # what the user passes to `docker compose up`


class _Recorder(Mapping[str, str]):
    """An environment that remembers every name Config.from_env asks for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values, self.asked = dict(values), set[str]()

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return self.values.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return key in self.values

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def config_variables() -> set[str]:
    """Every environment variable backend/config.py reads (asked while parsing an environment)."""
    env = _Recorder({"DATABASE_URL": "postgresql://x@db/x", "REDIS_URL": "redis://r:6379/0"})
    Config.from_env(env)
    return env.asked


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} substitution, and $$ for a dollar."""
    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2) or "", match.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"compose would stop: {name} unset ({arg})")
        return arg
    return re.sub(r"\$\{([A-Z0-9_]+)(:-|:\?)?([^}]*)\}", one, value).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def app_env(service: dict[str, Any]) -> dict[str, str]:
    return {name: interpolate(str(value), GIVEN) for name, value in service["environment"].items()}


def test_compose_has_the_whole_topology(services: dict[str, Any]) -> None:
    assert set(services) == {"postgres-primary", "postgres-replica", *VALKEYS, "valkey-init", *APPS, "nginx"}
    for name in VALKEYS:
        assert "--cluster-enabled" in services[name]["command"]
    init = services["valkey-init"]
    script = " ".join(init["command"])
    assert "--cluster create" in script and "--cluster-replicas 0" in script
    assert all(name in script for name in VALKEYS)
    assert set(init["depends_on"]) == set(VALKEYS)
    replica = (DEPLOY / "postgres-replica.sh").read_text()
    assert re.search(r"pg_basebackup -h postgres-primary .*-R", replica)
    assert services["postgres-replica"]["depends_on"]["postgres-primary"]["condition"] == "service_healthy"


def test_every_file_compose_mounts_or_builds_exists(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).is_file(), f"{name} mounts missing {source}"
        if "build" in service:
            context = (DEPLOY / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file()
            assert (context / "run.py").is_file() and (context / "sql").is_dir()


def test_apps_read_only_variables_config_knows_and_start_with_them(services: dict[str, Any]) -> None:
    known = config_variables()
    secrets = set()
    for name in APPS:
        env = app_env(services[name])
        assert set(env) <= known, f"{name}: not read by backend/config.py: {set(env) - known}"
        config = Config.from_env(env)       # parses: no ConfigError with the values compose gives
        assert config.redis_cluster and config.trust_proxy and config.host == "0.0.0.0"
        assert urlsplit(config.database_url or "").hostname == "postgres-primary"
        assert urlsplit(config.database_replica_url or "").hostname == "postgres-replica"
        assert urlsplit(config.redis_url or "").hostname in VALKEYS
        secrets.add(config.jwt_keys)
        depends = services[name]["depends_on"]
        assert depends["valkey-init"]["condition"] == "service_completed_successfully"
    assert len(secrets) == 1, "every instance must verify the others' tokens (one JWT_SECRET)"


def test_compose_refuses_to_start_without_a_shared_jwt_secret(services: dict[str, Any]) -> None:
    raw = str(services["app-1"]["environment"]["JWT_SECRET"])
    with pytest.raises(AssertionError, match="JWT_SECRET unset"):
        interpolate(raw, {})


# ---- nginx.conf -------------------------------------------------------------------------------

@dataclass
class Block:
    """One nginx directive: its name, arguments and, for blocks, the directives inside."""

    name: str
    args: list[str]
    children: list[Block] = field(default_factory=list)

    def all(self, name: str) -> list[Block]:
        return [child for child in self.children if child.name == name]

    def one(self, name: str, *args: str) -> Block:
        found = [child for child in self.all(name) if child.args[:len(args)] == list(args)]
        assert len(found) == 1, f"expected one {name} {args}, found {len(found)}"
        return found[0]

    def headers(self) -> dict[str, str]:
        return {b.args[0].lower(): " ".join(b.args[1:]) for b in self.all("proxy_set_header")}


def parse_nginx(text: str) -> Block:
    tokens = re.findall(r"\"[^\"]*\"|'[^']*'|[{};]|[^\s{};]+", re.sub(r"#[^\n]*", "", text))
    root, stack, words = Block("root", []), [], []
    stack.append(root)
    for token in tokens:
        if token == "{":
            block = Block(words[0], words[1:])
            stack[-1].children.append(block)
            stack.append(block)
            words = []
        elif token == ";":
            stack[-1].children.append(Block(words[0], words[1:]))
            words = []
        elif token == "}":
            assert not words, f"unterminated directive {words}"
            stack.pop()
        else:
            words.append(token.strip("\"'"))
    assert len(stack) == 1 and not words, "unbalanced braces"
    return root


@pytest.fixture(scope="module")
def nginx() -> Block:
    return parse_nginx((DEPLOY / "nginx.conf").read_text())


def _size(raw: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(raw[:-1]) * units[raw[-1].lower()] if raw[-1].lower() in units else int(raw)


def _seconds(raw: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h)?", raw).groups()  # type: ignore[union-attr]
    return int(number) * units[unit or "s"]


def test_nginx_upstream_is_the_three_app_services(nginx: Block, services: dict[str, Any]) -> None:
    upstream = nginx.one("upstream", "backend")
    targets = {server.args[0] for server in upstream.all("server")}
    assert targets == {f"{name}:{app_env(services[name])['PORT']}" for name in APPS}
    mount = services["nginx"]["volumes"][0]
    assert mount.startswith("./nginx.conf:/etc/nginx/conf.d/")
    assert set(services["nginx"]["depends_on"]) == set(APPS)


def test_nginx_limits_match_the_app(nginx: Block) -> None:
    defaults = Config()
    server = nginx.one("server")
    assert _size(server.one("client_max_body_size").args[0]) == defaults.max_body
    photos = server.one("location", "=", "/photos")
    assert _size(photos.one("client_max_body_size").args[0]) > defaults.max_photo
    assert _seconds(server.one("client_header_timeout").args[0]) == defaults.header_timeout
    # nginx must give up an idle upstream connection before the app closes it (HEADER_TIMEOUT).
    upstream = nginx.one("upstream", "backend")
    assert _seconds(upstream.one("keepalive_timeout").args[0]) < defaults.header_timeout


def test_nginx_proxies_websockets_sse_and_client_addresses(nginx: Block) -> None:
    server = nginx.one("server")
    headers = server.headers()
    # The app trusts the first X-Forwarded-For hop (TRUST_PROXY): nginx must overwrite, never append.
    assert headers["x-forwarded-for"] == "$remote_addr"
    assert headers["upgrade"] == "$http_upgrade" and headers["connection"] == "$connection_upgrade"
    assert server.one("proxy_http_version").args == ["1.1"]
    mapping = nginx.one("map", "$http_upgrade", "$connection_upgrade")
    assert {b.name: b.args for b in mapping.children} == {"default": ["upgrade"], "": [""]}
    for location in server.all("location"):
        # A location with its own proxy_set_header would inherit none of the server's.
        assert not location.all("proxy_set_header"), f"location {location.args} drops the proxy headers"
        assert location.one("proxy_pass").args == ["http://backend"]
    ws = server.one("location", "/ws")
    assert _seconds(ws.one("proxy_read_timeout").args[0]) > Config().ws_heartbeat
    sse = server.one("location", "/sse")
    assert sse.one("proxy_buffering").args == ["off"]
