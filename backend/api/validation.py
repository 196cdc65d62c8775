"""Input parsing at the edge: one path for JSON bodies and one for query strings (STYLE 2.7)."""

from __future__ import annotations

from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from backend import keys
from backend.api.messages import location, message_for
from backend.errors import ApiError
from backend.jsonutil import loads

M = TypeVar("M", bound=BaseModel)

JSON_TYPES = frozenset({"application/json"})


def fields_of(exc: ValidationError, skip: int = 0) -> dict[str, list[str]]:
    """Field name -> Russian messages, the DRF shape; errors without a location go to non_field_errors.

    `skip` drops leading location parts that name no field (a tagged union's tag, for ws frames)."""
    fields: dict[str, list[str]] = {}
    for item in exc.errors(include_url=False):
        fields.setdefault(location(item["loc"], skip), []).append(message_for(item))
    return fields


def invalid_input(exc: ValidationError) -> ApiError:
    """One ApiError for any pydantic failure; malformed JSON is a parse error, not a field error."""
    for item in exc.errors(include_url=False):
        if item["type"] == "json_invalid":
            return ApiError(400, "parse_error", "Некорректный JSON в теле запроса.")
    return ApiError(400, "validation_error", "Неверные данные.", fields=fields_of(exc))


def unsupported_media_type(expected: str = "JSON") -> ApiError:
    return ApiError(415, "unsupported_media_type", f"Неподдерживаемый тип данных. Ожидается {expected}.")


def payload_too_large(limit: int) -> ApiError:
    return ApiError(413, "request_too_large", f"Слишком большой запрос: не более {limit} байт.")


async def read_body(request: web.Request, limit: int | None = None) -> bytes:
    """The raw body, refused with 413 past `limit` (default MAX_BODY_SIZE)."""
    limit = limit or request.app[keys.CONFIG].max_body
    if request.content_length is not None and request.content_length > limit:
        raise payload_too_large(limit)
    # read(n) returns what has arrived so far, not n bytes: without the loop a chunked body past the
    # limit was cut at its first chunk and refused as malformed JSON (400) instead of 413.
    body = bytearray()
    while len(body) <= limit:
        chunk = await request.content.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    if len(body) > limit:
        raise payload_too_large(limit)
    return bytes(body)


NUL_MESSAGE = "Строка не может содержать символ NUL (\\u0000)."


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def _nul_error(value: Any) -> ApiError:
    """The field (top-level key) holding the NUL, like any other field error of the surface."""
    field = "non_field_errors"
    if isinstance(value, dict):
        field = next((str(key) for key, item in value.items() if not _has_nul(key) and _has_nul(item)), field)
    return ApiError(400, "validation_error", "Неверные данные.", fields={field: [NUL_MESSAGE]})


def refuse_nul(body: bytes) -> None:
    """400 for a NUL character anywhere in a JSON body: PostgreSQL text cannot hold it (it would be
    a 500 deep in a query). The escape is looked for first, so ordinary bodies are not parsed twice."""
    if b"\\u0000" not in body:
        return
    try:
        value = loads(body)
    except ValueError:
        return                          # the parser that follows reports the malformed JSON
    if _has_nul(value):
        raise _nul_error(value)


def require_json(request: web.Request) -> None:
    """415 unless the body is declared as JSON."""
    if request.content_type not in JSON_TYPES:
        raise unsupported_media_type()


def parse_json(body: bytes, model: type[M]) -> M:
    """Parse and validate a JSON body already read (a signed body is read before it is checked)."""
    if not body.strip():
        raise ApiError(400, "parse_error", "Пустое тело запроса: ожидается JSON.")
    refuse_nul(body)
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_input(exc) from None


async def read_json(request: web.Request, model: type[M]) -> M:
    """The one body reader: a JSON body parsed and validated into `model` in one pass."""
    require_json(request)
    return parse_json(await read_body(request), model)


def validate(model: type[M], data: Any) -> M:
    """Validate already-parsed values (query, path parameters) into `model`; failures are our 400."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc) from None


def read_query(request: web.Request, model: type[M]) -> M:
    """Validate the query string into `model` (unknown values → 400, never 500)."""
    params = dict(request.query)
    if _has_nul(params):
        raise _nul_error(params)
    return validate(model, params)
