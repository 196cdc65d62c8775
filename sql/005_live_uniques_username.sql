-- Names are unique among live rows only: a soft-deleted role or user no longer holds its name
-- (SPEC §2.4 hides deleted rows everywhere, so re-creating "tourist" must work).
-- username: the messenger surface's name of a user (SPEC §2.1), = login unless chosen.
DROP INDEX roles_name_key;
CREATE UNIQUE INDEX roles_name_key ON roles (lower(name)) WHERE deleted_at IS NULL;

DROP INDEX users_login_key;
DROP INDEX users_email_key;
DROP INDEX users_phone_key;
CREATE UNIQUE INDEX users_login_key ON users (lower(login)) WHERE deleted_at IS NULL;
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL AND deleted_at IS NULL;
CREATE UNIQUE INDEX users_phone_key ON users (phone) WHERE phone IS NOT NULL AND deleted_at IS NULL;

ALTER TABLE users ADD COLUMN username text;
UPDATE users SET username = login;
ALTER TABLE users ALTER COLUMN username SET NOT NULL;
CREATE UNIQUE INDEX users_username_key ON users (lower(username)) WHERE deleted_at IS NULL;
