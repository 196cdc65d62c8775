-- CallUp call orders and their status history (SPEC §6). The `apps` table itself is older
-- (sql/003_auth.sql); its Core definition now lives in backend/callup/tables.py.

CREATE TABLE call_orders (
    id                uuid PRIMARY KEY,
    app_id            bigint NOT NULL REFERENCES apps (id),
    phone             text NOT NULL CHECK (phone ~ '^[0-9]{11}$'),
    code              text NOT NULL CHECK (code ~ '^[0-9]{4}$'),
    caller_prefix     text NOT NULL CHECK (caller_prefix ~ '^[0-9]{7}$'),
    status            text NOT NULL DEFAULT 'created'
                      CHECK (status IN ('created', 'calling', 'called', 'failed', 'verified', 'expired', 'locked')),
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    provider_call_id  text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    -- The time of the last status change (the `updated_at` of order.status events).
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX call_orders_app_idx ON call_orders (app_id, created_at);
-- The sweeper's two scans touch only live orders.
CREATE INDEX call_orders_expiry_idx ON call_orders (expires_at) WHERE status IN ('created', 'calling', 'called');
CREATE INDEX call_orders_calling_idx ON call_orders (updated_at) WHERE status = 'calling';

CREATE TABLE call_order_transitions (
    id           bigserial PRIMARY KEY,
    order_id     uuid NOT NULL REFERENCES call_orders (id),
    from_status  text,                 -- NULL for the order's creation
    to_status    text NOT NULL,
    reason       text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX call_order_transitions_order_idx ON call_order_transitions (order_id, id);
