"""DATABASE_REPLICA_URL and DATABASE_REPLICA_RETRY: parsed once, a bad value names the variable."""

from __future__ import annotations

import pytest

from backend.config import Config, ConfigError

PRIMARY = "postgresql://app@db:5432/app"


def test_replica_url_is_read_beside_the_primary() -> None:
    config = Config.from_env({"DATABASE_URL": PRIMARY, "DATABASE_REPLICA_URL": "postgres://app@replica:5432/app",
                              "DATABASE_REPLICA_RETRY": "2.5"})
    assert (config.database_replica_url, config.replica_retry) == ("postgres://app@replica:5432/app", 2.5)
    assert Config.from_env({"DATABASE_URL": PRIMARY}).database_replica_url is None


@pytest.mark.parametrize(("env", "message"), [
    ({"DATABASE_URL": PRIMARY, "DATABASE_REPLICA_URL": "mysql://replica/app"}, "DATABASE_REPLICA_URL must be"),
    ({"DATABASE_URL": PRIMARY, "DATABASE_REPLICA_URL": "replica:5432"}, "DATABASE_REPLICA_URL must be"),
    ({"DATABASE_REPLICA_URL": "postgresql://replica/app"}, "DATABASE_REPLICA_URL needs DATABASE_URL"),
    ({"DATABASE_URL": PRIMARY, "DATABASE_REPLICA_RETRY": "soon"}, "DATABASE_REPLICA_RETRY"),
    ({"DATABASE_URL": PRIMARY, "DATABASE_REPLICA_RETRY": "-1"}, "DATABASE_REPLICA_RETRY"),
])
def test_bad_replica_settings_fail_with_the_variable_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)
