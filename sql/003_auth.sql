-- Refresh tokens (SPEC §3.3) and CallUp applications (SPEC §6.1, resolved by the auth middleware).

CREATE TABLE refresh_tokens (
    id          bigserial PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE,              -- SHA-256 hex of the opaque token; the token itself is never stored
    user_id     bigint NOT NULL REFERENCES users (id),
    family_id   uuid NOT NULL,
    client      text NOT NULL DEFAULT 'web',
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    rotated_at  timestamptz,                       -- set when this token was exchanged for a new one
    revoked_at  timestamptz
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id) WHERE revoked_at IS NULL;

CREATE TABLE apps (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    token       uuid NOT NULL UNIQUE,
    owner_id    bigint REFERENCES users (id),
    blocked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
