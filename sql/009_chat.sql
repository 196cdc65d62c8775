-- Messenger (SPEC §7, seed 004): avatars, one-to-one chats, their members and messages.

-- Avatars live in Postgres so every instance serves the same bytes (SPEC §7.2); a user's
-- current one is users.avatar_photo_id, older uploads are deleted when a new one is set.
CREATE TABLE photos (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id),
    content_type  text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/webp', 'image/gif')),
    size          integer NOT NULL CHECK (size > 0),
    sha256        text NOT NULL,
    data          bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX photos_user_idx ON photos (user_id);

-- A one-to-one chat is named by its ordered pair; the unique index makes "open the chat of
-- these two" race-free across instances (INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE chats (
    id               bigserial PRIMARY KEY,
    user_low         bigint NOT NULL REFERENCES users (id),
    user_high        bigint NOT NULL REFERENCES users (id),
    last_message_id  bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (user_low < user_high)
);
CREATE UNIQUE INDEX chats_pair_key ON chats (user_low, user_high);

-- Membership and each member's read position (monotonic: only ever moves forward).
CREATE TABLE chat_members (
    chat_id       bigint NOT NULL REFERENCES chats (id),
    user_id       bigint NOT NULL REFERENCES users (id),
    last_read_id  bigint NOT NULL DEFAULT 0,
    joined_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (chat_id, user_id)
);
CREATE INDEX chat_members_user_idx ON chat_members (user_id);

CREATE TABLE messages (
    id          bigserial PRIMARY KEY,
    chat_id     bigint NOT NULL REFERENCES chats (id),
    sender_id   bigint NOT NULL REFERENCES users (id),
    text        text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 4000),
    client_id   text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- History pages walk one chat by id (SPEC §11.24).
CREATE INDEX messages_chat_idx ON messages (chat_id, id);
-- A retried send with the same client_id is the same message (idempotency, SPEC §7.3).
CREATE UNIQUE INDEX messages_client_key ON messages (chat_id, sender_id, client_id) WHERE client_id IS NOT NULL;
