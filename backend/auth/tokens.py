"""Access JWTs exactly as SPEC §3.1: HS256, kid header, pinned algorithm, 30 s leeway."""

from __future__ import annotations

import base64
import binascii
import hmac
import time
import uuid
from dataclasses import dataclass
from functools import lru_cache

import jwt
import orjson

from backend.api.types import BIGINT_MAX
from backend.auth.passwords import password_fingerprint
from backend.config import Config
from backend.errors import ApiError, unauthorized
from backend.principal import TOKEN_LEEWAY

LEEWAY = TOKEN_LEEWAY          # one leeway for REST, /ws and /sse (backend.principal)
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
    """Verify signature, algorithm, expiry and shape; 401 token_not_valid for anything wrong.

    One pass over the token, by hand: PyJWT's get_unverified_header + decode parsed it twice and
    cost ~0.25 ms per request here (issue 11). The checks are PyJWT's for HS256 with our options:
    pinned algorithm, the kid's key, constant-time MAC comparison, exp/iat/nbf with LEEWAY, and
    sub/exp/iat/jti required; a token with claims we never issue (aud, crit) is refused.
    """
    try:
        header_part, payload_part, signature_part = token.split(".")
        header = orjson.loads(_b64decode(header_part))
        signature = _b64decode(signature_part)
    except (ValueError, binascii.Error):            # orjson.JSONDecodeError is a ValueError
        raise invalid_token() from None
    if not isinstance(header, dict) or "crit" in header:
        raise invalid_token()
    secret = _verifying_keys(config.jwt_keys).get(str(header.get("kid", "")))
    if secret is None or header.get("alg") != ALGORITHM:
        raise invalid_token()
    # hmac.digest: the one-shot C HMAC, without an HMAC object per request.
    expected = hmac.digest(secret[1], f"{header_part}.{payload_part}".encode(), "sha256")
    if not hmac.compare_digest(expected, signature):
        raise invalid_token()
    try:
        payload = orjson.loads(_b64decode(payload_part))
    except (ValueError, binascii.Error):
        raise invalid_token() from None
    if not isinstance(payload, dict) or "aud" in payload or not all(
            name in payload for name in ("sub", "exp", "iat", "jti")):
        raise invalid_token()
    now = time.time()
    nbf = payload.get("nbf")
    if (not _unix_time(payload["exp"]) or now > payload["exp"] + LEEWAY
            or not _unix_time(payload["iat"]) or payload["iat"] > now + LEEWAY
            or (nbf is not None and (not _unix_time(nbf) or nbf > now + LEEWAY))):
        raise invalid_token()
    sub, role, iat, exp = payload.get("sub"), payload.get("role"), payload.get("iat"), payload.get("exp")
    # Ids are bounded like the bigint columns they are looked up in: a larger one is a bad token
    # (401), not a driver error (500) on every path and at the /ws upgrade.
    if (payload.get("typ") != "access" or not _bigint_id(sub) or not _bigint_id(role)
            or not _unix_time(iat) or not _unix_time(exp) or payload.get("client") not in CLIENTS
            or not isinstance(payload.get("pwd_fp"), str) or not isinstance(payload.get("jti"), str)):
        raise invalid_token()
    return Claims(user_id=sub, role_id=role, client=payload["client"], pwd_fp=payload["pwd_fp"],
                  jti=payload["jti"], iat=int(iat), exp=int(exp), secret=secret[0])


@lru_cache(maxsize=8)
def _verifying_keys(jwt_keys: tuple[tuple[str, str], ...]) -> dict[str, tuple[str, bytes]]:
    """kid → (secret, its bytes), built once per key set rather than on every request."""
    return {kid: (secret, secret.encode()) for kid, secret in jwt_keys}


def _b64decode(segment: str) -> bytes:
    """base64url without padding (RFC 7515), as PyJWT reads it."""
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _bigint_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= BIGINT_MAX


def _unix_time(value: object) -> bool:
    # We issue whole seconds; PyJWT also lets numeric strings and absurd magnitudes through.
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 2**53
