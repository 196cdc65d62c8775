"""Access JWTs exactly as SPEC §3.1: HS256, kid header, pinned algorithm, 30 s leeway."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from backend.api.types import BIGINT_MAX
from backend.auth.passwords import password_fingerprint
from backend.config import Config
from backend.errors import ApiError, unauthorized

LEEWAY = 30
ALGORITHM = "HS256"
CLIENTS = ("web", "mobile")


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    jti: str
    expires_at: int


def invalid_token() -> ApiError:
    return unauthorized("Токен недействителен или просрочен.", "token_not_valid")


def password_changed() -> ApiError:
    return unauthorized("Пароль был изменён. Авторизуйтесь снова.", "password_changed")


def issue_access(config: Config, *, user_id: int, login: str, role_id: int, password_hash: str,
                 client: str = "web", issued_at: int | None = None) -> AccessToken:
    """Sign an access token with the first configured key."""
    kid, secret = config.jwt_keys[0]
    now = issued_at or int(time.time())
    jti = str(uuid.uuid4())
    expires = now + int(config.access_ttl)
    payload = {"sub": user_id, "login": login, "role": role_id, "client": client,
               "pwd_fp": password_fingerprint(secret, password_hash),
               "iat": now, "exp": expires, "jti": jti, "typ": "access"}
    token = jwt.encode(payload, secret, algorithm=ALGORITHM, headers={"kid": kid})
    return AccessToken(token=token, jti=jti, expires_at=expires)


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: int
    role_id: int
    client: str
    pwd_fp: str
    jti: str
    iat: int
    exp: int
    secret: str            # the verifying key, to recompute pwd_fp against the current hash


def decode_access(config: Config, token: str) -> Claims:
    """Verify signature, algorithm, expiry and shape; 401 token_not_valid for anything wrong."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise invalid_token() from None
    keys = dict(config.jwt_keys)
    secret = keys.get(str(header.get("kid", "")))
    if secret is None or header.get("alg") != ALGORITHM:
        raise invalid_token()
    try:
        payload: dict[str, Any] = jwt.decode(
            token, secret, algorithms=[ALGORITHM], leeway=LEEWAY,
            # sub is an integer as in seed 001; PyJWT >= 2.10 would reject it otherwise.
            options={"verify_sub": False, "require": ["sub", "exp", "iat", "jti"]})
    except jwt.PyJWTError:
        raise invalid_token() from None
    sub, role, iat, exp = payload.get("sub"), payload.get("role"), payload.get("iat"), payload.get("exp")
    # Ids are bounded like the bigint columns they are looked up in: a larger one is a bad token
    # (401), not a driver error (500) on every path and at the /ws upgrade.
    if (payload.get("typ") != "access" or not _bigint_id(sub) or not _bigint_id(role)
            or not _unix_time(iat) or not _unix_time(exp) or payload.get("client") not in CLIENTS
            or not isinstance(payload.get("pwd_fp"), str) or not isinstance(payload.get("jti"), str)):
        raise invalid_token()
    return Claims(user_id=sub, role_id=role, client=payload["client"], pwd_fp=payload["pwd_fp"],
                  jti=payload["jti"], iat=int(iat), exp=int(exp), secret=secret)


def _bigint_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= BIGINT_MAX


def _unix_time(value: object) -> bool:
    # We issue whole seconds; PyJWT also lets numeric strings and absurd magnitudes through.
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 2**53
