#!/usr/bin/env bash
# At image build: collect the static files, run NetBox's real migrations on an empty PostgreSQL of the
# build's own (socket only, trust: it lives for this script alone) and keep a dump of the migrated database.
set -Eeo pipefail
export NETBOX_ROOT=/opt/netbox DJANGO_SETTINGS_MODULE=netbox.settings
# the configuration needs these; the build's server is reached on its socket, Redis is not used by migrate
export SECRET_KEY="build-time-only-$(head -c 48 /dev/urandom | base64 | tr -d '/+=')"
export DB_HOST=/tmp/pg-socket DB_NAME=netbox DB_USER=postgres REDIS_HOST=127.0.0.1
PGDATA=/tmp/pg-data
mkdir -p "$PGDATA" "$DB_HOST" && chown postgres:postgres "$PGDATA" "$DB_HOST"
runuser -u postgres -- /usr/lib/postgresql/17/bin/initdb -D "$PGDATA" --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
runuser -u postgres -- /usr/lib/postgresql/17/bin/pg_ctl -D "$PGDATA" -w -l /tmp/pg.log \
  -o "-k $DB_HOST -c listen_addresses= -c dynamic_shared_memory_type=mmap -c fsync=off" start >/dev/null
trap 'runuser -u postgres -- /usr/lib/postgresql/17/bin/pg_ctl -D "$PGDATA" -m fast stop >/dev/null || :' EXIT
runuser -u postgres -- createdb -h "$DB_HOST" netbox
netbox collectstatic --no-input >/dev/null
started=$(date +%s)
# NetBox's migrations render Django's model states over and over: a heap of long-lived objects that Python's
# cyclic collector, at its default thresholds, sweeps whole again and again. Rarer collections run the same
# migrations and send the same SQL (the young garbage is still collected).
/opt/netbox/venv/bin/python3 -c 'import gc, sys; gc.set_threshold(100_000, 50, 100)
from netbox.cli import main; sys.argv = ["netbox", "migrate", "--no-input"]; sys.exit(main())' \
  >/tmp/migrate.log || { tail -30 /tmp/migrate.log; exit 1; }
echo "netbox migrate: $(grep -c '  Applying ' /tmp/migrate.log) migrations in $(( $(date +%s) - started )) s"
# plain SQL without owners or grants: restorable by the image's DB_USER into a server of an older major (the
# official image's users run PostgreSQL 14 to 17): without the one setting pg_dump 17 adds that they lack
runuser -u postgres -- pg_dump -h "$DB_HOST" --no-owner --no-privileges netbox \
  | sed '/^SET transaction_timeout = /d' | gzip -9 > /opt/netbox/schema/migrated.sql.gz
echo "schema dump: $(stat -c %s /opt/netbox/schema/migrated.sql.gz) bytes"
