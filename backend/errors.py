"""The one error type of the service and its common constructors (SPEC §2.3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class ApiError(Exception):
    """An error a client should see: HTTP status, stable snake_case code, Russian message.

    `fields` maps a field name to its messages (validation errors); each surface renders the
    whole error in its own body style, so domain code never shapes an error body.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: Mapping[str, Sequence[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields: dict[str, list[str]] = {k: list(v) for k, v in (fields or {}).items()}
        self.headers: dict[str, str] = dict(headers or {})


def not_found(message: str = "Не найдено.", code: str = "not_found") -> ApiError:
    """404 for a missing, deleted or invisible object."""
    return ApiError(404, code, message)


def invalid(fields: Mapping[str, Sequence[str]], message: str = "Неверные данные.") -> ApiError:
    """400 with field errors (DRF-style body on /api/*)."""
    return ApiError(400, "validation_error", message, fields=fields)


def field_error(field: str, message: str) -> ApiError:
    """400 for one field."""
    return invalid({field: [message]})


def missing_pk(field: str, value: object) -> ApiError:
    """400 on `field`, a body field naming a row that does not exist (or is deleted), in DRF's words."""
    return field_error(field, f'Недопустимый первичный ключ "{value}" - объект не существует.')


def unauthorized(message: str = "Учетные данные не были предоставлены.", code: str = "not_authenticated") -> ApiError:
    """401: no principal, or credentials that do not hold any more."""
    return ApiError(401, code, message)


def forbidden(message: str = "У вас недостаточно прав для выполнения данного действия.",
              code: str = "permission_denied") -> ApiError:
    """403: the principal is known but may not do this."""
    return ApiError(403, code, message)


def conflict(code: str, message: str) -> ApiError:
    """409: the request is valid but the current state forbids it."""
    return ApiError(409, code, message)


def too_many(retry_after: int, message: str = "Слишком много запросов. Попробуйте позже.",
             code: str = "rate_limited") -> ApiError:
    """429 with Retry-After."""
    return ApiError(429, code, message, headers={"Retry-After": str(max(1, int(retry_after)))})


def internal_error(request_id: str) -> ApiError:
    """500 that names the request id and nothing of the cause."""
    return ApiError(500, "internal_error", f"Внутренняя ошибка сервера. Код запроса: {request_id}.")


def redis_unavailable() -> ApiError:
    """503 while the shared Redis (sessions, deny-lists, limits, bus) cannot be reached."""
    return ApiError(503, "service_unavailable", "Сервис временно недоступен. Повторите запрос позже.",
                    headers={"Retry-After": "5"})


def database_unavailable() -> ApiError:
    """503 while PostgreSQL cannot be reached (down, restarting, or a connection it dropped)."""
    return ApiError(503, "database_unavailable", "База данных временно недоступна. Повторите запрос позже.",
                    headers={"Retry-After": "1"})
