"""REDIS_CLUSTER is read and checked like every variable; shard links reach nodes with REDIS_URL's options."""

from __future__ import annotations

import pytest

from backend.config import Config, ConfigError
from backend.realtime.shards import node_url


def test_redis_cluster_is_a_checked_boolean_that_needs_a_url() -> None:
    assert Config.from_env({}).redis_cluster is False
    assert Config.from_env({"REDIS_URL": "redis://10.0.0.1:7000", "REDIS_CLUSTER": "true"}).redis_cluster is True
    with pytest.raises(ConfigError, match="REDIS_CLUSTER"):
        Config.from_env({"REDIS_URL": "redis://10.0.0.1:7000", "REDIS_CLUSTER": "maybe"})
    with pytest.raises(ConfigError, match="REDIS_CLUSTER=true needs REDIS_URL"):
        Config.from_env({"REDIS_CLUSTER": "1"})


def test_node_url_keeps_scheme_credentials_and_options() -> None:
    assert node_url("rediss://app:s3cret@10.0.0.1:7000/0?ssl_cert_reqs=none", "10.0.0.2", 7001) == \
        "rediss://app:s3cret@10.0.0.2:7001?ssl_cert_reqs=none"
    assert node_url("redis://10.0.0.1:7000", "127.0.0.1", 7002) == "redis://127.0.0.1:7002"
