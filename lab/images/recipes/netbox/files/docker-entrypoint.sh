#!/usr/bin/env bash
# The official NetBox image's start-up, for the pip-installed NetBox of this image: wait for PostgreSQL
# (DB_WAIT_TIMEOUT), bring the schema up to date with the real `netbox migrate` when `migrate --check` finds
# migrations to apply, create the superuser (SKIP_SUPERUSER, SUPERUSER_*), then exec the command (gunicorn on
# 8080).
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
	for i in $(seq "$timeout"); do
		if psql -qtAX -c 'SELECT 1' >/dev/null 2>&1; then
			break
		fi
		[ "$i" = "$timeout" ] && { echo >&2 "⏳ database $PGHOST:$PGPORT/$PGDATABASE did not answer in $timeout s"; exit 1; }
		echo "⏳ waiting on the database ($i/$timeout)"
		sleep 1
	done
	if [ "$(psql -qtAX -c "SELECT to_regclass('public.django_migrations') IS NULL")" = t ] && [ -s "$DUMP" ]; then
		echo "⚙️ empty database: restoring the migrated schema of this image's build"
		gunzip -c "$DUMP" | psql -qX -v ON_ERROR_STOP=1 --single-transaction >/dev/null
	fi
	unset PGPASSWORD
	# as the official image: migrate and its housekeeping only when `migrate --check` finds work (each
	# command is one more start of Django: a restart after a rollback does not pay for those)
	if ! netbox migrate --check >/dev/null 2>&1; then
		echo "⚙️ applying database migrations"
		netbox migrate --no-input
		netbox remove_stale_contenttypes --no-input >/dev/null || :
		netbox clearsessions >/dev/null || :
	fi
	if [ "${SKIP_SUPERUSER:-false}" != true ]; then
		netbox shell --interface python < /opt/netbox/docker/super_user.py
	fi
	echo "✅ initialisation done"
	if [ "$1" = netbox-start ]; then
		shift
		set -- gunicorn "$@"
	fi
fi
exec "$@"
