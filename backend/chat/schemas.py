"""Request and response models of the messenger (seed 004, SPEC §7) and its websocket frames (§8.2)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field, StringConstraints, field_validator

from backend.api.types import Id as ApiId
from backend.api.types import Phone
from backend.chat.const import BIGINT_MAX, CLIENT_ID_MAX, PAGE_DEFAULT, PAGE_MAX, TEXT_MAX
from backend.realtime.frames import CommandFrame


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000: refused here, it would be a driver error (500) later.
    if "\x00" in value:
        raise ValueError("Строка не может содержать символ NUL.")
    return value


NoNul = AfterValidator(_no_nul)

# The one integer rule of every surface (backend.api.types.Id): a number or a numeric string.
Id = ApiId
QueryId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254,
                                         pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"), NoNul]
# Usernames appear in paths (/users/{name}), so they keep to letters, digits, '_', '.', '-'.
Username = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                            pattern=r"^[\w.-]+$")]
Name = Annotated[str, Field(max_length=150), NoNul]
Status = Annotated[str, Field(max_length=500), NoNul]
Password = Annotated[str, Field(min_length=1, max_length=1024), NoNul]
ClientId = Annotated[str, Field(min_length=1, max_length=CLIENT_ID_MAX), NoNul]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("Сообщение не может быть пустым.")
    return value


Text = Annotated[str, Field(min_length=1, max_length=TEXT_MAX), NoNul, AfterValidator(_not_blank)]


# ---- users (SPEC §7.1) ---------------------------------------------------------------------------

class UserCreateIn(BaseModel):
    """POST /users: email and password, any other user field optional (seed 004 §2.1)."""

    email: Email
    password: Password
    username: Username | None = None
    name: Name = ""
    status: Status = ""
    phone: Phone | None = None


class LoginIn(BaseModel):
    """POST /login: `email` may also be the username (the login) or the phone."""

    email: Annotated[str, Field(min_length=1, max_length=254), NoNul]
    password: Password


class UserPutIn(BaseModel):
    """PUT /users/{id}: the whole editable user (seed 004 §2.6); `phone` is kept when absent."""

    id: Id | None = None
    email: Email | None
    username: Username
    name: Name
    status: Status
    phone: Phone | None = None
    password: Any = None

    @field_validator("password")
    @classmethod
    def _no_password(cls, value: Any) -> None:
        # A silently ignored password would let a client believe it was changed.
        if value is not None:
            raise ValueError("Пароль здесь не меняется.")
        return None


class UserOut(BaseModel):
    """Another user's email and phone are null (SPEC §11.22)."""

    id: int
    email: str | None
    username: str
    name: str
    status: str
    phone: str | None
    avatar_url: str | None


class UsersOut(BaseModel):
    users: list[UserOut]


class SearchQuery(BaseModel):
    q: Annotated[str, Field(min_length=1, max_length=150), NoNul]


class PhotoOut(BaseModel):
    id: int
    url: str


class DoneOut(BaseModel):
    message: str


# ---- chats and messages (SPEC §7.3) --------------------------------------------------------------

class ChatIn(BaseModel):
    user_id: Id


class MessageIn(BaseModel):
    text: Text
    client_id: ClientId | None = None


class ReadIn(BaseModel):
    message_id: Id


class MessagesQuery(BaseModel):
    """?before=<id> / ?after=<id> (both: the page just after `after`, below `before`), ?limit."""

    before: QueryId | None = None
    after: QueryId | None = None
    limit: Annotated[int, Field(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT


class MessageOut(BaseModel):
    id: int
    chat_id: int
    sender_id: int
    text: str
    client_id: str | None
    created_at: dt.datetime


class MemberOut(BaseModel):
    id: int
    username: str
    name: str
    online: bool | None = Field(None, description="GET /chats only: a live socket on any instance (SPEC §12.4)")


class ChatOut(BaseModel):
    id: int
    members: list[MemberOut]
    closed: bool = Field(False, description="a member was deleted or blocked: messages are refused (403), "
                                            "history stays readable")
    last_message: MessageOut | None
    unread_count: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ChatsOut(BaseModel):
    chats: list[ChatOut]


class MessagesOut(BaseModel):
    messages: list[MessageOut]


class ReadOut(BaseModel):
    chat_id: int
    user_id: int
    message_id: int
    unread_count: int


# ---- websocket commands (SPEC §8.2) --------------------------------------------------------------

class SendFrame(CommandFrame):
    type: Literal["send"]
    chat_id: Id
    text: Text
    client_id: ClientId | None = None


class TypingFrame(CommandFrame):
    type: Literal["typing"]
    chat_id: Id


class ReadFrame(CommandFrame):
    type: Literal["read"]
    chat_id: Id
    message_id: Id
