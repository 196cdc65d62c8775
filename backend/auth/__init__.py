"""Identity: users, roles, permissions, passwords, JWT, refresh tokens, sessions, app tokens."""
