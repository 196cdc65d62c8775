"""Schemathesis over /openapi.json against a running app (issue 10 "Fuzzing in the suite", issue 12).

Every documented operation gets a few generated requests — valid ones, and invalid ones where the
schema allows it — as anonymous, as a client, as an admin (and /v1 as a CallUp app); each answer must
pass `not_a_server_error`, `status_code_conformance`, `content_type_conformance`,
`response_schema_conformance`, and no 4xx of a Russian-speaking surface may carry an English message.

Bounded: a fixed number of examples per operation, derandomized (a fixed seed), no shrinking, and
a wall-clock budget past which calls are left out (and counted). The app is a real aiohttp server
on a real port; the fuzzer runs in a worker thread with blocking `requests`, so the test's event
loop keeps serving.

Credentials survive the fuzz: every call signs a fresh access token (a revoked one cannot blind
later calls), operations that end the caller's own credentials (logout, sign-out) are sent by a
throwaway user only, and generated path ids never name the fuzzing identities, their roles and
permission rows, or their app (a fuzzed block, delete, role or password change of the caller
itself would only turn the rest of the run into 401/403).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from backend import keys
from backend.auth.tables import permissions, roles, users
from backend.auth.tokens import issue_access
from backend.config import Config
from backend.db import read
from tests.conftest import TestUser, UserFactory

pytestmark = pytest.mark.slow

EXAMPLES = 2             # valid cases per operation (each sent by every identity)
NEGATIVE_EXAMPLES = 2    # invalid ones
GROUP = 10               # operations whose valid cases are drawn by one Hypothesis run
BUDGET = 90.0            # seconds for the whole fuzz, on a loaded 2-core machine
# The caller's own credentials end here: sent by a throwaway user only.
ENDS_OWN_CREDENTIALS = {("POST", "/auth/logout"), ("DELETE", "/logout"), ("POST", "/profile/signout")}
# Surfaces whose messages are Russian (SPEC §2.3); /v1 speaks the seed's English (README decisions).
ENGLISH_ALLOWED = "/v1"
PYDANTIC_PHRASES = re.compile(r"Input should|Field required|Unable to parse|Value error|Extra inputs|"
                              r"valid (?:integer|number|string|boolean|dictionary)|at least \d|at most \d")
ENGLISH_WORDS = re.compile(r"[A-Za-z]{2,}(?:[\s,'-]+[A-Za-z]{2,}){2,}")     # three words or more
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def _texts(value: Any) -> list[str]:
    """Every human string of an error body (the values, never the keys: those are field names)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() if key not in ("code", "error", "field")
                for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def english_messages(body: Any) -> list[str]:
    """Messages of an error body that are English: pydantic's phrases, or ASCII-only sentences."""
    return [text for text in _texts(body)
            if PYDANTIC_PHRASES.search(text) or (ENGLISH_WORDS.search(text) and not CYRILLIC.search(text))]


def no_english_in_4xx(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Custom check (issue 12): a 4xx of a Russian-speaking surface says nothing in English."""
    path = case.operation.path
    if not 400 <= response.status_code < 500 or path.startswith(ENGLISH_ALLOWED):
        return
    try:
        body = response.json()
    except ValueError:
        return
    found = english_messages(body)
    assert not found, f"English message in a {response.status_code} of {case.operation.label}: {found}"


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          no_english_in_4xx]


@dataclass
class Identity:
    """Who calls: headers made fresh for every call (a new access token each time)."""

    name: str
    headers: Callable[[], dict[str, str]]
    only: Callable[[str], bool] = lambda path: True
    anonymous: bool = False
    negative: bool = False      # also sends the invalid cases


@dataclass
class Findings:
    failures: dict[str, str] = field(default_factory=dict)     # operation + identity -> first failure
    calls: int = 0
    skipped: int = 0            # calls left out when the time budget ran out (a loaded machine)

    def add(self, key: str, message: str) -> None:
        self.failures.setdefault(key, message[:1500])


def _describe(exc: BaseException) -> str:
    """A finding in a few lines: the check's title and message (with the reproducing curl)."""
    if isinstance(exc, FailureGroup):
        return str(exc.args[0]) if exc.args else repr(exc)
    return f"{type(exc).__name__}: {exc}"


def _bearer(config: Config, user: TestUser, password_hash: str) -> Callable[[], dict[str, str]]:
    def headers() -> dict[str, str]:
        token = issue_access(config, user_id=user.id, login=user.login, role_id=user.role_id,
                             password_hash=password_hash)
        return {"Authorization": f"Bearer {token.token}"}
    return headers


Protected = dict[str, set[int]]          # path prefix -> ids a generated {id} under it must not name


def _names_protected(case: schemathesis.Case, protected: Protected) -> bool:
    """Does the case's {id} name one of the run's own users, roles, permission rows or app?"""
    value = (case.path_parameters or {}).get("id")
    return any(case.operation.path.startswith(prefix) and value in ids for prefix, ids in protected.items())


def _has_input(operation: schemathesis.APIOperation) -> bool:
    raw = operation.definition.raw
    return "requestBody" in raw or any(param.get("in") == "query" for param in raw.get("parameters", []))


def _names_other_template(case: schemathesis.Case) -> bool:
    """An invalid {id} of /users/{id} (not digits) is no request of it: that path is /users/{name}
    (documented on both parameters), so such a case would judge one operation by another's answer."""
    value = (case.path_parameters or {}).get("id")
    return case.operation.path == "/users/{id}" and not (isinstance(value, int) and value >= 0)


def _settings(examples: int) -> settings:
    return settings(max_examples=examples, derandomize=True, deadline=None, database=None, phases=[Phase.generate],
                    suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet)


def _collect(strategy: st.SearchStrategy[Any], examples: int) -> list[Any]:
    found: list[Any] = []

    @_settings(examples)
    @given(strategy)
    def collect(value: Any) -> None:
        found.append(value)

    collect()
    return found


def generate(operations: list[schemathesis.APIOperation], mode: GenerationMode, examples: int,
             size: int) -> tuple[dict[str, list[schemathesis.Case]], dict[str, str]]:
    """Up to `examples` cases per operation, the same on every run (derandomized), and the
    generation errors by operation.

    Cases are drawn for `size` operations at once: Hypothesis' set-up per test, not the drawing, is
    what costs. A group that cannot be drawn is drawn again one operation at a time.
    """
    cases: dict[str, list[schemathesis.Case]] = {}
    errors: dict[str, str] = {}
    for start in range(0, len(operations), size):
        group = operations[start:start + size]
        try:
            drawn = _collect(st.tuples(*(op.as_strategy(generation_mode=mode) for op in group)), examples)
        except Unsatisfiable:
            drawn = []                  # alone: nothing to make invalid (no parameters, no body)
        except Exception as exc:        # a generation error is a finding too
            if size == 1:
                errors[group[0].label] = f"generation: {type(exc).__name__}: {exc}"
                continue
            drawn = []
        if not drawn and size > 1:
            more, failed = generate(group, mode, examples, 1)
            cases |= more
            errors |= failed
            continue
        for index, op in enumerate(group):
            cases[op.label] = [row[index] for row in drawn]
    return cases, errors


def fuzz(schema: schemathesis.BaseSchema, base_url: str, identities: list[Identity], protected: Protected,
         last: list[Identity], deadline: float) -> Findings:
    """Send every generated case as every identity (blocking; called in a worker thread).

    Cases are generated once per operation and mode, then sent by each identity in turn. An
    anonymous caller of an operation that needs credentials only ever hears 401: one case is enough.
    """
    findings = Findings()
    session = requests.Session()
    # No cookie jar: a sessid one identity was handed must not ride along with the next one's calls.
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))

    def send(case: schemathesis.Case, who: Identity, key: str) -> None:
        if time.monotonic() > deadline:
            findings.skipped += 1
            return
        headers = who.headers()
        findings.calls += 1
        try:
            response = case.call(base_url=base_url, session=session, headers=headers, timeout=10)
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, FailureGroup) as exc:    # every finding is kept, the run goes on
            findings.add(key, _describe(exc))

    operations = [result.ok() for result in schema.get_all_operations()]
    # Valid cases in groups; invalid ones alone (a draw that misses its negation restarts the group).
    # Invalid input is refused before the caller's rights matter much: one identity with every right
    # sends it (and anonymous callers to open operations), which halves the calls of that pass.
    passes = ((GenerationMode.POSITIVE, EXAMPLES, GROUP), (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, 1))
    for mode, examples, size in passes:
        if time.monotonic() > deadline:
            break
        # An invalid path id is the router's 404 everywhere: only bodies and query strings are negated.
        chosen = operations if mode is GenerationMode.POSITIVE else [op for op in operations if _has_input(op)]
        cases, errors = generate(chosen, mode, examples, size)
        for label, message in errors.items():
            findings.add(f"{label} ({mode.value})", message)
        for operation in operations:
            secured = bool(operation.definition.raw.get("security"))
            ends_own = (operation.method.upper(), operation.path) in ENDS_OWN_CREDENTIALS
            callers = last if ends_own else [who for who in identities if who.only(operation.path)
                                             and (mode is GenerationMode.POSITIVE or who.negative
                                                  or (who.anonymous and not secured))]
            usable = [case for case in cases.get(operation.label, [])
                      if not _names_protected(case, protected) and not _names_other_template(case)]
            for who in callers:
                # An anonymous call to an operation that needs credentials is a 401, whatever it carries.
                for case in usable[:1] if who.anonymous and secured else usable:
                    send(case, who, f"{operation.label} as {who.name} ({mode.value})")
    return findings


async def _password_hash(client: TestClient, user_id: int) -> str:
    async with read(client.app[keys.DB]) as conn:
        return (await conn.execute(select(users.c.password_hash).where(users.c.id == user_id))).scalar_one()


async def test_schemathesis_finds_nothing(client: TestClient, config: Config, make_user: UserFactory) -> None:
    started = time.monotonic()
    admin = await make_user(role="admin")
    customer = await make_user(role="client")
    app_resp = await client.post("/api/callup/apps/", json={"name": "fuzz"}, headers=admin.headers)
    assert app_resp.status == 201
    app = await app_resp.json()
    async with read(client.app[keys.DB]) as conn:
        # Every seeded role and its permission row: fuzzing them could strip the admin of its rights.
        role_ids = set((await conn.execute(select(roles.c.id))).scalars())
        permission_ids = set((await conn.execute(select(permissions.c.id))).scalars())
    leaver = await make_user(role="client")
    people = {admin.id, customer.id, leaver.id}
    protected = {"/api/users/": people, "/api/clients/": people, "/users/": people, "/api/roles/": role_ids,
                 "/api/permissions/": permission_ids, "/api/callup/apps/": {app["id"]}}
    spec = await (await client.get("/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(spec)
    base_url = str(client.make_url("")).rstrip("/")

    admin_headers = _bearer(config, admin, await _password_hash(client, admin.id))
    identities = [
        Identity("anonymous", dict, anonymous=True),
        Identity("client", _bearer(config, customer, await _password_hash(client, customer.id))),
        Identity("admin", admin_headers, negative=True),
        Identity("app", lambda: {"X-Application-Token": app["token"]}, only=lambda path: path.startswith("/v1"),
                 negative=True),
    ]
    last = [Identity("leaving user", _bearer(config, leaver, await _password_hash(client, leaver.id)))]
    deadline = started + BUDGET - 5
    findings = await asyncio.to_thread(fuzz, schema, base_url, identities, protected, last, deadline)

    elapsed = time.monotonic() - started
    report = "\n\n".join(f"{key}:\n{message}" for key, message in sorted(findings.failures.items()))
    artifacts = Path(os.environ.get("TEST_ARTIFACTS") or Path(__file__).parents[2] / "test-artifacts") / "fuzz"
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "findings.txt").write_text(f"{findings.calls} calls in {elapsed:.1f} s, {findings.skipped} left out "
                                            f"past the budget\n\n{report}\n")
    summary = "\n".join(sorted(findings.failures))
    assert not findings.failures, (f"{len(findings.failures)} findings in {findings.calls} calls (details in "
                                   f"{artifacts / 'findings.txt'}):\n{summary}\n\n{report[:6000]}")
    assert elapsed < BUDGET and time.monotonic() < deadline, f"the fuzz took {elapsed:.1f} s"
    assert findings.calls > 500, findings.calls


def test_the_english_detector_knows_both_kinds() -> None:
    """The custom check's detector: pydantic's phrases and plain English sentences, never Russian."""
    assert english_messages({"car": ["Unable to parse input string as an integer"]})
    assert english_messages({"error": "x", "message": "Input should be a finite number"})
    assert english_messages({"detail": "Value must be one of web or mobile", "code": "validation_error"})
    assert not english_messages({"detail": "Неверные данные.", "code": "validation_error"})
    assert not english_messages({"client": ["Значение не является допустимым вариантом: 'web' или 'mobile'."]})
    assert not english_messages({"error": "not_found", "message": "Не найдено."})
