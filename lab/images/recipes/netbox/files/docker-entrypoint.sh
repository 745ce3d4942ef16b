#!/usr/bin/env bash
# The official NetBox image's start-up, for the pip-installed NetBox of this image: wait for PostgreSQL
# (DB_WAIT_TIMEOUT), bring the schema up to date with the real `netbox migrate` when `migrate --check` finds
# migrations to apply, create the superuser (SKIP_SUPERUSER, SUPERUSER_*), then exec the command (gunicorn on
# 8080). The checks and the superuser run in one start of Django (start_checks.py), not one per command.
#
# One addition: a database without NetBox's tables first gets the migrated schema this image's build made
# (a pg_dump taken after running every migration on an empty database). `migrate` then has nothing to do,
# instead of the many minutes NetBox's first migrate takes. A database NetBox has used is never touched.
set -Eeo pipefail
export NETBOX_ROOT=/opt/netbox DJANGO_SETTINGS_MODULE=netbox.settings
DUMP=/opt/netbox/schema/migrated.sql.gz
export PGHOST="${DB_HOST:-localhost}" PGPORT="${DB_PORT:-5432}" PGUSER="${DB_USER:-}" PGDATABASE="${DB_NAME:-netbox}"
export PGPASSWORD="${DB_PASSWORD:-}"
[ -n "${DB_PASSWORD_FILE:-}" ] && PGPASSWORD="$(< "$DB_PASSWORD_FILE")"

if [ "$1" = gunicorn ] || [ "$1" = netbox-start ]; then
	timeout="${DB_WAIT_TIMEOUT:-60}"
	# asked five times a second (the official image: once): the database of a host that just started is
	# usually ready within a second, and NetBox's start waits on it
	for i in $(seq "$((timeout * 5))"); do
		if psql -qtAX -c 'SELECT 1' >/dev/null 2>&1; then
			break
		fi
		[ "$i" = "$((timeout * 5))" ] && { echo >&2 "⏳ database $PGHOST:$PGPORT/$PGDATABASE did not answer in $timeout s"; exit 1; }
		[ "$((i % 5))" = 0 ] && echo "⏳ waiting on the database ($((i / 5))/$timeout)"
		sleep 0.2
	done
	if [ "$(psql -qtAX -c "SELECT to_regclass('public.django_migrations') IS NULL")" = t ] && [ -s "$DUMP" ]; then
		echo "⚙️ empty database: restoring the migrated schema of this image's build"
		gunzip -c "$DUMP" | psql -qX -v ON_ERROR_STOP=1 --single-transaction >/dev/null
	fi
	unset PGPASSWORD
	# the official image's checks (migrate and its housekeeping only when `migrate --check` finds work, then the
	# superuser unless SKIP_SUPERUSER) in one start of Django instead of one per command
	netbox shell --interface python < /opt/netbox/docker/start_checks.py
	echo "✅ initialisation done"
	if [ "$1" = netbox-start ]; then
		shift
		set -- gunicorn "$@"
	fi
fi
exec "$@"
