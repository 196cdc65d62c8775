"""The names of the channels several domains publish to, in one place (SPEC §8.3).

Each domain names its own channels next to its namespace (`cars` in sharing, `chat:{id}` in chat,
`callup:app:{id}` in callup); these are the shared ones. A misspelt constant fails at import; a
misspelt string literal would publish to a channel nobody hears.
"""

from __future__ import annotations

from typing import Final

DASHBOARD: Final = "dashboard"          # operators' feed: several domains publish there
USER_NAMESPACE: Final = "user"          # user:{id}, every socket of a user joins it
APP_NAMESPACE: Final = "app"            # app:{id}, a CallUp app's token connections
ROLE_TARGET: Final = "role"             # role:{id}: a control target only (every socket of the role's users)


def user_channel(user_id: int) -> str:
    """user:{id}: the events and control orders meant for one user's sockets."""
    return f"{USER_NAMESPACE}:{user_id}"


def app_channel(app_id: int) -> str:
    """app:{id}: the control orders meant for one CallUp app's token connections."""
    return f"{APP_NAMESPACE}:{app_id}"


def role_target(role_id: int) -> str:
    """role:{id}: the control orders meant for the sockets of every user of one role (never a channel)."""
    return f"{ROLE_TARGET}:{role_id}"
