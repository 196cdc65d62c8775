-- Fleet waybills (SPEC §5): passenger cars (with the car-sharing columns of §4.2/§11.12) and
-- fire trucks, their fuel norms, odometer/fuel snapshots, waybills and waybill records.
-- Every quantity of fuel is numeric(15,3) (litres, 3 decimals); norms numeric(10,3).

CREATE TABLE passenger_cars (
    id                 bigserial PRIMARY KEY,
    number             text NOT NULL,
    brand              text NOT NULL DEFAULT '',
    model              text NOT NULL DEFAULT '',
    shared             boolean NOT NULL DEFAULT false,
    state              text NOT NULL DEFAULT 'available'
                       CHECK (state IN ('available', 'reserved', 'in_trip', 'maintenance')),
    lat                numeric(9,6),
    lon                numeric(9,6),
    fuel_level         numeric(12,3),
    tariff_per_minute  numeric(12,3),
    state_changed_at   timestamptz NOT NULL DEFAULT now(),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz
);
CREATE UNIQUE INDEX passenger_cars_number_key ON passenger_cars (lower(number)) WHERE deleted_at IS NULL;

CREATE TABLE fire_trucks (
    id          bigserial PRIMARY KEY,
    number      text NOT NULL,
    brand       text NOT NULL DEFAULT '',
    model       text NOT NULL DEFAULT '',
    type        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE UNIQUE INDEX fire_trucks_number_key ON fire_trucks (lower(number)) WHERE deleted_at IS NULL;

CREATE TABLE passenger_car_norms (
    id          bigserial PRIMARY KEY,
    car_id      bigint NOT NULL REFERENCES passenger_cars (id),
    season      text NOT NULL CHECK (season IN ('summer', 'winter')),
    city_norm   numeric(10,3) NOT NULL CHECK (city_norm >= 0),
    area_norm   numeric(10,3) NOT NULL CHECK (area_norm >= 0),
    date        date NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
-- One live norm per car, season and date; for-date reads this index backwards.
CREATE UNIQUE INDEX passenger_car_norms_key ON passenger_car_norms (car_id, season, date)
    WHERE deleted_at IS NULL;

CREATE TABLE fire_truck_norms (
    id                 bigserial PRIMARY KEY,
    car_id             bigint NOT NULL REFERENCES fire_trucks (id),
    season             text NOT NULL CHECK (season IN ('summer', 'winter')),
    with_pump_norm     numeric(10,3) NOT NULL CHECK (with_pump_norm >= 0),
    without_pump_norm  numeric(10,3) NOT NULL CHECK (without_pump_norm >= 0),
    km_norm            numeric(10,3) NOT NULL CHECK (km_norm >= 0),
    date               date NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    deleted_at         timestamptz
);
CREATE UNIQUE INDEX fire_truck_norms_key ON fire_truck_norms (car_id, season, date) WHERE deleted_at IS NULL;

CREATE TABLE passenger_car_waybills (
    id                          bigserial PRIMARY KEY,
    car_id                      bigint NOT NULL REFERENCES passenger_cars (id),
    driver_id                   bigint NOT NULL REFERENCES users (id),
    date                        date NOT NULL,
    norm_season                 text NOT NULL CHECK (norm_season IN ('summer', 'winter')),
    fuel_type                   text NOT NULL DEFAULT '',
    upon_issuance               numeric(15,3) NOT NULL DEFAULT 0,
    total_spent                 numeric(15,3) NOT NULL DEFAULT 0,
    total_received              numeric(15,3) NOT NULL DEFAULT 0,
    required_by_norm            numeric(15,3) NOT NULL DEFAULT 0,
    availability_upon_delivery  numeric(15,3) NOT NULL DEFAULT 0,
    savings                     numeric(15,3) NOT NULL DEFAULT 0,
    overrun                     numeric(15,3) NOT NULL DEFAULT 0,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    deleted_at                  timestamptz
);
CREATE INDEX passenger_car_waybills_car_idx ON passenger_car_waybills (car_id);
CREATE INDEX passenger_car_waybills_driver_idx ON passenger_car_waybills (driver_id);

CREATE TABLE fire_truck_waybills (
    id                          bigserial PRIMARY KEY,
    car_id                      bigint NOT NULL REFERENCES fire_trucks (id),
    driver_id                   bigint NOT NULL REFERENCES users (id),
    date                        date NOT NULL,
    norm_season                 text NOT NULL CHECK (norm_season IN ('summer', 'winter')),
    fuel_type                   text NOT NULL DEFAULT '',
    upon_issuance               numeric(15,3) NOT NULL DEFAULT 0,
    total_spent                 numeric(15,3) NOT NULL DEFAULT 0,
    total_received              numeric(15,3) NOT NULL DEFAULT 0,
    required_by_norm            numeric(15,3) NOT NULL DEFAULT 0,
    availability_upon_delivery  numeric(15,3) NOT NULL DEFAULT 0,
    savings                     numeric(15,3) NOT NULL DEFAULT 0,
    overrun                     numeric(15,3) NOT NULL DEFAULT 0,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    deleted_at                  timestamptz
);
CREATE INDEX fire_truck_waybills_car_idx ON fire_truck_waybills (car_id);
CREATE INDEX fire_truck_waybills_driver_idx ON fire_truck_waybills (driver_id);

-- The chain of a car is its live snapshots in id order (see backend/fleet/records.py).
CREATE TABLE passenger_car_odometer_fuel (
    id          bigserial PRIMARY KEY,
    car_id      bigint NOT NULL REFERENCES passenger_cars (id),
    odometer    bigint NOT NULL CHECK (odometer >= 0),
    fuel        numeric(15,3) NOT NULL,
    date        date NOT NULL,
    waybill_id  bigint REFERENCES passenger_car_waybills (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE INDEX passenger_car_odometer_fuel_chain_idx ON passenger_car_odometer_fuel (car_id, id)
    WHERE deleted_at IS NULL;

CREATE TABLE fire_truck_odometer_fuel (
    id          bigserial PRIMARY KEY,
    car_id      bigint NOT NULL REFERENCES fire_trucks (id),
    odometer    bigint NOT NULL CHECK (odometer >= 0),
    fuel        numeric(15,3) NOT NULL,
    date        date NOT NULL,
    waybill_id  bigint REFERENCES fire_truck_waybills (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);
CREATE INDEX fire_truck_odometer_fuel_chain_idx ON fire_truck_odometer_fuel (car_id, id)
    WHERE deleted_at IS NULL;

-- A record keeps the norm values it was computed with, so recomputing the chain after an edit
-- is deterministic even if the norm was changed or deleted since.
CREATE TABLE passenger_car_records (
    id                     bigserial PRIMARY KEY,
    waybill_id             bigint NOT NULL REFERENCES passenger_car_waybills (id),
    car_id                 bigint NOT NULL REFERENCES passenger_cars (id),
    snapshot_id            bigint NOT NULL REFERENCES passenger_car_odometer_fuel (id),
    city_norm              numeric(10,3) NOT NULL,
    area_norm              numeric(10,3) NOT NULL,
    target                 text NOT NULL DEFAULT '',
    departure_time         time NOT NULL,
    arrival_time           time NOT NULL,
    distance_city_km       integer NOT NULL CHECK (distance_city_km >= 0),
    distance_area_km       integer NOT NULL CHECK (distance_area_km >= 0),
    fuel_refueled          numeric(15,3) NOT NULL CHECK (fuel_refueled >= 0),
    fuel_used              numeric(15,3) NOT NULL CHECK (fuel_used >= 0),
    odometer_before        bigint NOT NULL,
    fuel_before_departure  numeric(15,3) NOT NULL,
    distance_total_km      integer NOT NULL,
    odometer_after         bigint NOT NULL,
    fuel_used_city         numeric(15,3) NOT NULL,
    fuel_used_area         numeric(15,3) NOT NULL,
    fuel_used_normal       numeric(15,3) NOT NULL,
    fuel_on_return         numeric(15,3) NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    deleted_at             timestamptz
);
CREATE UNIQUE INDEX passenger_car_records_snapshot_key ON passenger_car_records (snapshot_id);
CREATE INDEX passenger_car_records_waybill_idx ON passenger_car_records (waybill_id) WHERE deleted_at IS NULL;

CREATE TABLE fire_truck_records (
    id                      bigserial PRIMARY KEY,
    waybill_id              bigint NOT NULL REFERENCES fire_truck_waybills (id),
    car_id                  bigint NOT NULL REFERENCES fire_trucks (id),
    snapshot_id             bigint NOT NULL REFERENCES fire_truck_odometer_fuel (id),
    with_pump_norm          numeric(10,3) NOT NULL,
    without_pump_norm       numeric(10,3) NOT NULL,
    km_norm                 numeric(10,3) NOT NULL,
    target                  text NOT NULL DEFAULT '',
    departure_time          time NOT NULL,
    arrival_time            time NOT NULL,
    odometer_after          bigint NOT NULL,
    time_with_pump          integer NOT NULL CHECK (time_with_pump >= 0),
    time_without_pump       integer NOT NULL CHECK (time_without_pump >= 0),
    fuel_refueled           numeric(15,3) NOT NULL CHECK (fuel_refueled >= 0),
    fuel_used               numeric(15,3) NOT NULL CHECK (fuel_used >= 0),
    odometer_before         bigint NOT NULL,
    fuel_before_departure   numeric(15,3) NOT NULL,
    distance_km             bigint NOT NULL,
    fuel_used_by_distance   numeric(15,3) NOT NULL,
    fuel_used_with_pump     numeric(15,3) NOT NULL,
    fuel_used_without_pump  numeric(15,3) NOT NULL,
    fuel_used_normal        numeric(15,3) NOT NULL,
    fuel_on_return          numeric(15,3) NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    deleted_at              timestamptz
);
CREATE UNIQUE INDEX fire_truck_records_snapshot_key ON fire_truck_records (snapshot_id);
CREATE INDEX fire_truck_records_waybill_idx ON fire_truck_records (waybill_id) WHERE deleted_at IS NULL;
