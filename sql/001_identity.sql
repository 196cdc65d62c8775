-- Identity shared by every surface (SPEC §2.1): roles, their permission flags, users.

CREATE TABLE roles (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE UNIQUE INDEX roles_name_key ON roles (lower(name));

CREATE TABLE permissions (
    id                                  bigserial PRIMARY KEY,
    role_id                             bigint NOT NULL REFERENCES roles (id),
    is_admin                            boolean NOT NULL DEFAULT false,
    can_use_mobile_booking              boolean NOT NULL DEFAULT false,
    can_create_passenger_cars_waybills  boolean NOT NULL DEFAULT false,
    view_passenger_cars_waybills        boolean NOT NULL DEFAULT false,
    can_create_fire_trucks_waybills     boolean NOT NULL DEFAULT false,
    view_fire_trucks_waybills           boolean NOT NULL DEFAULT false,
    can_manage_fleet                    boolean NOT NULL DEFAULT false,
    can_manage_users                    boolean NOT NULL DEFAULT false,
    can_manage_clients                  boolean NOT NULL DEFAULT false,
    can_book_cars                       boolean NOT NULL DEFAULT false,
    can_view_dashboard                  boolean NOT NULL DEFAULT false,
    can_manage_apps                     boolean NOT NULL DEFAULT false,
    deleted_at                          timestamptz
);
-- One live permission row per role (SPEC §5.1: a second one is a 400).
CREATE UNIQUE INDEX permissions_role_key ON permissions (role_id) WHERE deleted_at IS NULL;

CREATE TABLE users (
    id              bigserial PRIMARY KEY,
    login           text NOT NULL,
    email           text,
    phone           text,
    password_hash   text NOT NULL,
    name            text NOT NULL DEFAULT '',
    surname         text NOT NULL DEFAULT '',
    last_name       text NOT NULL DEFAULT '',
    status          text NOT NULL DEFAULT '',
    driver_license  text,
    role_id         bigint NOT NULL REFERENCES roles (id),
    client_status   text NOT NULL DEFAULT 'approved'
                    CHECK (client_status IN ('pending', 'approved', 'blocked')),
    blocked_reason  text,
    avatar_photo_id bigint,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);
-- Logins and emails compare case-insensitively (SPEC §2.1).
CREATE UNIQUE INDEX users_login_key ON users (lower(login));
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX users_phone_key ON users (phone) WHERE phone IS NOT NULL;
CREATE INDEX users_role_idx ON users (role_id);

INSERT INTO roles (name) VALUES ('admin'), ('operator'), ('mechanic'), ('driver'), ('client');

INSERT INTO permissions (role_id, is_admin) SELECT id, true FROM roles WHERE name = 'admin';
INSERT INTO permissions (role_id, can_manage_fleet, can_manage_clients, can_view_dashboard)
    SELECT id, true, true, true FROM roles WHERE name = 'operator';
INSERT INTO permissions (role_id, can_manage_fleet, view_passenger_cars_waybills, view_fire_trucks_waybills,
                         can_create_passenger_cars_waybills, can_create_fire_trucks_waybills)
    SELECT id, true, true, true, true, true FROM roles WHERE name = 'mechanic';
INSERT INTO permissions (role_id, can_use_mobile_booking, can_create_passenger_cars_waybills,
                         can_create_fire_trucks_waybills)
    SELECT id, true, true, true FROM roles WHERE name = 'driver';
INSERT INTO permissions (role_id, can_book_cars, can_use_mobile_booking)
    SELECT id, true, true FROM roles WHERE name = 'client';
