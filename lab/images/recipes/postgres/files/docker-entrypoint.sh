#!/usr/bin/env bash
# The official postgres image's contract, for Debian's PostgreSQL: on an empty PGDATA, initdb with
# POSTGRES_USER / POSTGRES_PASSWORD, create POSTGRES_DB, run /docker-entrypoint-initdb.d/*, then
# exec the server as user postgres. A PGDATA that holds a database is started as it is.
set -Eeo pipefail

# usage: file_env VAR [DEFAULT]: VAR from $VAR or from the file $VAR_FILE names (Docker secrets)
file_env() {
	local var="$1" fileVar="${1}_FILE" def="${2:-}"
	if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
		echo >&2 "error: both $var and $fileVar are set (but are exclusive)"
		exit 1
	fi
	local val="$def"
	if [ "${!var:-}" ]; then
		val="${!var}"
	elif [ "${!fileVar:-}" ]; then
		val="$(< "${!fileVar}")"
	fi
	export "$var"="$val"
	unset "$fileVar"
}

setup_env() {
	file_env 'POSTGRES_PASSWORD'
	file_env 'POSTGRES_USER' 'postgres'
	file_env 'POSTGRES_DB' "$POSTGRES_USER"
	file_env 'POSTGRES_INITDB_ARGS'
	: "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
	DATABASE_ALREADY_EXISTS=
	if [ -s "$PGDATA/PG_VERSION" ]; then
		DATABASE_ALREADY_EXISTS='true'
	fi
}

create_db_directories() {
	mkdir -p "$PGDATA"
	chmod 00700 "$PGDATA" || :
	mkdir -p /var/run/postgresql || :
	chmod 03775 /var/run/postgresql || :
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		mkdir -p "$POSTGRES_INITDB_WALDIR"
		[ "$(id -u)" = '0' ] && find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres '{}' +
		chmod 700 "$POSTGRES_INITDB_WALDIR"
	fi
	if [ "$(id -u)" = '0' ]; then
		find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
		find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
	fi
}

verify_minimum_env() {
	if [ -z "$POSTGRES_PASSWORD" ] && [ 'trust' != "$POSTGRES_HOST_AUTH_METHOD" ]; then
		cat >&2 <<-'EOE'
			Error: Database is uninitialized and superuser password is not specified.
			       You must specify POSTGRES_PASSWORD to a non-empty value for the
			       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

			       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
			       connections without a password. This is *not* recommended.
		EOE
		exit 1
	fi
}

init_database_dir() {
	if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
		set -- --waldir "$POSTGRES_INITDB_WALDIR" "$@"
	fi
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is word-split on purpose, as upstream does
	eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"' "$@"'
}

setup_hba_conf() {
	{
		echo
		if [ 'trust' = "$POSTGRES_HOST_AUTH_METHOD" ]; then
			echo '# warning trust is enabled for all connections'
		fi
		echo "host all all all $POSTGRES_HOST_AUTH_METHOD"
	} >> "$PGDATA/pg_hba.conf"
}

temp_server_start() {
	# internal start: no TCP (the healthcheck must not pass before initialisation is done)
	PGUSER="${PGUSER:-$POSTGRES_USER}" pg_ctl -D "$PGDATA" \
		-o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
}

temp_server_stop() {
	PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
}

psql_run() {
	PGHOST= PGHOSTADDR= psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc "$@"
}

setup_db() {
	local exists
	exists="$(POSTGRES_DB= psql_run --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<-'EOSQL'
		SELECT 1 FROM pg_database WHERE datname = :'db' ;
	EOSQL
	)"
	if [ -z "$exists" ]; then
		POSTGRES_DB= psql_run --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
			CREATE DATABASE :"db" ;
		EOSQL
		echo
	fi
}

process_init_files() {
	local f
	echo
	for f; do
		case "$f" in
			*.sh)
				if [ -x "$f" ]; then
					echo "$0: running $f"; "$f"
				else
					echo "$0: sourcing $f"; . "$f"
				fi ;;
			*.sql)    echo "$0: running $f"; psql_run --dbname "$POSTGRES_DB" -f "$f"; echo ;;
			*.sql.gz) echo "$0: running $f"; gunzip -c "$f" | psql_run --dbname "$POSTGRES_DB"; echo ;;
			*.sql.xz) echo "$0: running $f"; xzcat "$f" | psql_run --dbname "$POSTGRES_DB"; echo ;;
			*)        echo "$0: ignoring $f" ;;
		esac
		echo
	done
}

main() {
	# first arg is `-f` or `--some-option`: the server's flags
	if [ "${1:0:1}" = '-' ]; then
		set -- postgres "$@"
	fi
	if [ "$1" = 'postgres' ]; then
		setup_env
		create_db_directories
		if [ "$(id -u)" = '0' ]; then
			exec gosu postgres "$BASH_SOURCE" "$@"
		fi
		if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
			verify_minimum_env
			init_database_dir
			setup_hba_conf
			export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
			temp_server_start "$@"
			setup_db
			process_init_files /docker-entrypoint-initdb.d/*
			temp_server_stop
			unset PGPASSWORD
			echo
			echo 'PostgreSQL init process complete; ready for start up.'
			echo
		else
			echo
			echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
			echo
		fi
	fi
	exec "$@"
}

main "$@"
