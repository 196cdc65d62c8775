-- Car-sharing bookings (SPEC §4.3). A booking is active while reserved or in_trip; the two
-- partial unique indexes are the last line of the race-free rule: one active booking per user
-- and per car, whatever the interleaving of requests on any number of instances.

CREATE TABLE bookings (
    id                 bigserial PRIMARY KEY,
    car_id             bigint NOT NULL REFERENCES passenger_cars (id),
    user_id            bigint NOT NULL REFERENCES users (id),
    status             text NOT NULL DEFAULT 'reserved'
                       CHECK (status IN ('reserved', 'in_trip', 'finished', 'cancelled', 'expired')),
    -- The tariff is fixed when the car is reserved: a later edit of the car does not bill this trip.
    tariff_per_minute  numeric(12,3) NOT NULL DEFAULT 0,
    reserved_until     timestamptz NOT NULL,
    started_at         timestamptz,
    finished_at        timestamptz,
    duration_s         bigint CHECK (duration_s >= 0),
    cost               numeric(18,3) CHECK (cost >= 0),
    start_lat          numeric(9,6),
    start_lon          numeric(9,6),
    start_fuel_level   numeric(12,3),
    end_lat            numeric(9,6),
    end_lon            numeric(9,6),
    end_fuel_level     numeric(12,3),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX bookings_active_user_key ON bookings (user_id) WHERE status IN ('reserved', 'in_trip');
CREATE UNIQUE INDEX bookings_active_car_key ON bookings (car_id) WHERE status IN ('reserved', 'in_trip');
-- The sweeper's scan: only reservations, oldest deadline first.
CREATE INDEX bookings_reserved_until_idx ON bookings (reserved_until) WHERE status = 'reserved';
CREATE INDEX bookings_user_idx ON bookings (user_id, id);
CREATE INDEX bookings_car_idx ON bookings (car_id, id);
