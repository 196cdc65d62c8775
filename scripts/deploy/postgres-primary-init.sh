#!/bin/sh
# Runs once, when the official image initialises the primary's data directory (initdb.d):
# a replication role, a slot that keeps WAL until the replica has it, and pg_hba for the role.
set -eu
psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres <<SQL
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD '${REPLICATION_PASSWORD}';
SELECT pg_create_physical_replication_slot('replica1');
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
