-- A waybill remembers the snapshot it was issued against (SPEC §5.5 upon_issuance). Editing or
-- deleting an earlier record of the car rewrites the fuel of later snapshots (the chain recompute
-- of backend/fleet/records.py); upon_issuance is then re-read from this snapshot, or from the latest
-- live snapshot before it if it was deleted (backend/fleet/issuance.py). NULL: the snapshot is
-- unknown, and the stored upon_issuance is kept as it is.

ALTER TABLE passenger_car_waybills
    ADD COLUMN issued_from_snapshot_id bigint REFERENCES passenger_car_odometer_fuel (id);
ALTER TABLE fire_truck_waybills
    ADD COLUMN issued_from_snapshot_id bigint REFERENCES fire_truck_odometer_fuel (id);

-- Backfill, best effort: the car's latest snapshot that was live when the waybill was created and,
-- if the waybill has records (deleted ones too), is older than the snapshot of its first record.
-- A waybill moved to another car after creation may get NULL or an earlier snapshot. Existing
-- upon_issuance values are left untouched; they follow the snapshot from the next recompute on.
UPDATE passenger_car_waybills w SET issued_from_snapshot_id = (
    SELECT max(s.id) FROM passenger_car_odometer_fuel s
    WHERE s.car_id = w.car_id
      AND s.created_at <= w.created_at
      AND (s.deleted_at IS NULL OR s.deleted_at > w.created_at)
      AND s.id < ALL (SELECT r.snapshot_id FROM passenger_car_records r WHERE r.waybill_id = w.id));
UPDATE fire_truck_waybills w SET issued_from_snapshot_id = (
    SELECT max(s.id) FROM fire_truck_odometer_fuel s
    WHERE s.car_id = w.car_id
      AND s.created_at <= w.created_at
      AND (s.deleted_at IS NULL OR s.deleted_at > w.created_at)
      AND s.id < ALL (SELECT r.snapshot_id FROM fire_truck_records r WHERE r.waybill_id = w.id));

-- The recompute re-reads the waybills of one car issued from a range of snapshot ids.
CREATE INDEX passenger_car_waybills_issued_idx ON passenger_car_waybills (car_id, issued_from_snapshot_id);
CREATE INDEX fire_truck_waybills_issued_idx ON fire_truck_waybills (car_id, issued_from_snapshot_id);
