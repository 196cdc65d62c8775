-- Refresh tokens remember what they were issued against (SPEC §3.3).
-- pwd_fp: "kid:fingerprint" of the password hash at issue; any change of the hash (API or a manual
--   UPDATE) no longer matches, so the token dies without any trigger on users.
-- access_jti: the access token issued together with it, so /auth/logout finds the family.
-- Rows older than this migration get an empty fingerprint: they fail the check once and the
-- user signs in again, which is the safe side.
ALTER TABLE refresh_tokens
    ADD COLUMN access_jti text,
    ADD COLUMN pwd_fp     text NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ALTER COLUMN pwd_fp DROP DEFAULT;
CREATE INDEX refresh_tokens_access_jti_idx ON refresh_tokens (access_jti);
