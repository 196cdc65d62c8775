"""The messenger's limits, event names and error codes (SPEC §7, §11.22-25), in one place."""

from __future__ import annotations

from typing import Final

from backend.errors import ApiError
from backend.principal import Permission

TEXT_MAX: Final = 4000
CLIENT_ID_MAX: Final = 100
PAGE_DEFAULT: Final = 50
PAGE_MAX: Final = 200
SEARCH_LIMIT: Final = 50            # SPEC §7.1: at most 50 users per search
CHATS_MAX: Final = 500              # GET /chats is not paginated; this bounds one answer
BIGINT_MAX: Final = 2**63 - 1

MESSAGE_CREATED: Final = "message.created"
MESSAGE_READ: Final = "message.read"
CHAT_CREATED: Final = "chat.created"
TYPING: Final = "typing"

MANAGE_USERS: Final = Permission.MANAGE_USERS


def chat_channel(chat_id: int) -> str:
    return f"chat:{chat_id}"


def user_not_found() -> ApiError:
    """Seed 004: a nonexistent id is bad data (400), not a 404."""
    return ApiError(400, "user_not_found", "Пользователь не найден.")


def chat_not_found() -> ApiError:
    return ApiError(400, "chat_not_found", "Чат не найден.")


def message_not_found() -> ApiError:
    return ApiError(400, "message_not_found", "Сообщение не найдено в этом чате.")


def chat_with_self() -> ApiError:
    return ApiError(400, "chat_with_self", "Нельзя создать чат с самим собой.")


def forbidden() -> ApiError:
    return ApiError(403, "forbidden", "Недостаточно прав.")


def chat_closed() -> ApiError:
    """A chat whose other member was deleted or blocked takes no messages: "not allowed" (SPEC §11.22)."""
    return ApiError(403, "forbidden", "Чат закрыт: собеседник удалён или заблокирован.")


def not_a_member() -> ApiError:
    return ApiError(403, "forbidden", "Вы не участник этого чата.")


def invalid_credentials() -> ApiError:
    """Seed 004: a wrong login or password is 400 with a mnemonic code."""
    return ApiError(400, "invalid_credentials", "Неверный email или пароль.")


def no_avatar() -> ApiError:
    return ApiError(404, "photo_not_found", "У пользователя нет аватарки.")


def not_an_image() -> ApiError:
    return ApiError(415, "unsupported_media_type", "Файл не является изображением JPEG, PNG, WebP или GIF.")


def no_file() -> ApiError:
    return ApiError(400, "file_required", "Ожидается один файл в поле photo.")


def many_files() -> ApiError:
    return ApiError(400, "too_many_files", "Ожидается ровно один файл.")
