"""The embedded servers' ports can be pinned: PG_PORT / VALKEY_PORT (issue 12); 0 or unset = free ports."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from backend.config import Config, ConfigError
from backend.embedded import free_port
from backend.embedded_share import has_database, services


def test_ports_are_read_and_checked() -> None:
    config = Config.from_env({"PG_PORT": "15432", "VALKEY_PORT": "16379"})
    assert (config.pg_port, config.valkey_port) == (15432, 16379)
    assert (Config.from_env({}).pg_port, Config.from_env({}).valkey_port) == (0, 0)
    for name in ("PG_PORT", "VALKEY_PORT"):
        for bad in ("70000", "-1", "x"):
            with pytest.raises(ConfigError, match=name):
                Config.from_env({name: bad})


def test_pinned_ports_are_the_ones_listened_on(tmp_path: Path) -> None:
    pg_port, valkey_port = free_port(), free_port()
    config = Config(database_url=None, redis_url=None, pg_port=pg_port, valkey_port=valkey_port)
    assert not has_database(tmp_path)
    with services(config, tmp_path) as ready:
        assert f":{pg_port}/" in (ready.database_url or "")
        assert f":{valkey_port}/" in (ready.redis_url or "")
        for port in (pg_port, valkey_port):
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass
    assert has_database(tmp_path)
