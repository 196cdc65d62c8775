"""CALLUP_PROVIDER_SECRET (SPEC §6.4): no well-known default signs callbacks; `http` needs a real one."""

from __future__ import annotations

import json

import pytest

from backend import cli
from backend.callup.calls import sign
from backend.config import Config, ConfigError
from tests.callup.conftest import TestApp, create_order, error_of, signed_event, statuses, wait_for_status
from tests.conftest import AppFactory

OLD_DEFAULT = "callup-dev-secret"


async def test_a_callback_signed_with_the_old_default_is_refused(make_client: AppFactory,
                                                                 app_a: TestApp) -> None:
    """Regression: with CALLUP_PROVIDER_SECRET unset the key was `callup-dev-secret`, printed in the
    README, so anybody could fail or complete real orders."""
    unset = Config.from_env({})
    assert unset.callup_provider_secret != OLD_DEFAULT
    client = await make_client(callup_sim_delay=30, callup_provider_secret=unset.callup_provider_secret)
    order = await create_order(client, app_a)
    await wait_for_status(client, order["id"], "calling")
    event = {"order_id": order["id"], "status": "failed", "reason": "forged"}
    raw = json.dumps(event).encode()
    refused = await signed_event(client, raw, signature=sign(OLD_DEFAULT, raw))
    assert refused.status == 403
    assert error_of(await refused.json())[0] == "invalid_signature"
    assert "failed" not in await statuses(client, order["id"])
    # The process's own key still works (what an in-process provider would use).
    assert (await signed_event(client, raw)).status == 200


def test_unset_secret_is_random_and_http_refuses_to_start() -> None:
    first, second = Config.from_env({}), Config.from_env({"CALLUP_PROVIDER_SECRET": ""})
    assert len(first.callup_provider_secret) >= 64
    assert first.callup_provider_secret != second.callup_provider_secret
    assert Config().callup_provider_secret not in (OLD_DEFAULT, Config().callup_provider_secret)
    http = {"CALLUP_PROVIDER": "http", "CALLUP_PROVIDER_URL": "http://provider.example/calls"}
    for secret in (None, "", "   "):
        env = http if secret is None else {**http, "CALLUP_PROVIDER_SECRET": secret}
        with pytest.raises(ConfigError, match="CALLUP_PROVIDER_SECRET"):
            Config.from_env(env)
    assert Config.from_env({**http, "CALLUP_PROVIDER_SECRET": "s3cret"}).callup_provider_secret == "s3cret"


def test_run_py_names_the_missing_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CALLUP_PROVIDER", "http")
    monkeypatch.setenv("CALLUP_PROVIDER_URL", "http://provider.example/calls")
    monkeypatch.delenv("CALLUP_PROVIDER_SECRET", raising=False)
    # create-app without --name: should the config pass, argparse stops it instead of a server starting.
    assert cli.main(["create-app"]) == 2
    assert "CALLUP_PROVIDER_SECRET" in capsys.readouterr().err
