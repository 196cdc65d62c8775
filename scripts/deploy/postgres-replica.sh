#!/bin/sh
# The replica's entrypoint: on first start clone the primary with pg_basebackup -R (standby.signal
# and primary_conninfo written for us, streaming from slot replica1), then run as a hot standby.
set -eu
PGDATA=/var/lib/postgresql/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    until pg_basebackup -h postgres-primary -U replicator -D "$PGDATA" -R -X stream -S replica1 --checkpoint=fast; do
        echo "waiting for the primary..."
        rm -rf "${PGDATA:?}"/*
        sleep 2
    done
    chmod 0700 "$PGDATA"
fi
exec postgres -D "$PGDATA" -c hot_standby=on -c max_connections=300
