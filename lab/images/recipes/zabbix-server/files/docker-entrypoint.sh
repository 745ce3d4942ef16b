#!/usr/bin/env bash
# The official zabbix-server-pgsql image's contract, for Debian's Zabbix server: the database from
# DB_SERVER_HOST / DB_SERVER_PORT / POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB (or their _FILE
# forms), any zabbix_server.conf parameter from ZBX_<PARAMETER IN CAPITALS>, the schema, images and
# data imported when the database has none, then the server in the foreground (it drops to user zabbix).
set -Eeo pipefail

CONF=/etc/zabbix/zabbix_server.conf
SAMPLE=/usr/share/zabbix-server-pgsql/zabbix_server.conf
SQL=/usr/share/zabbix-server-pgsql

# usage: file_env VAR [DEFAULT]: VAR from $VAR or from the file $VAR_FILE names (Docker secrets)
file_env() {
	local var="$1" fileVar="${1}_FILE" def="${2:-}"
	if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
		echo >&2 "** $var and $fileVar are both set (expected one of them)"
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
	: "${DB_SERVER_HOST:=postgres-server}"
	: "${DB_SERVER_PORT:=5432}"
	file_env POSTGRES_USER zabbix
	file_env POSTGRES_PASSWORD zabbix
	: "${POSTGRES_DB:=zabbix}"
	: "${DB_SERVER_SCHEMA:=public}"
	export PGHOST="$DB_SERVER_HOST" PGPORT="$DB_SERVER_PORT" PGUSER="$POSTGRES_USER" \
		PGPASSWORD="$POSTGRES_PASSWORD" PGDATABASE="$POSTGRES_DB" PGCONNECT_TIMEOUT=5
	export PGOPTIONS="-c search_path=$DB_SERVER_SCHEMA"
}

# one line per parameter; the password never goes to stdout
write_config() {
	{
		echo "LogType=console"
		echo "PidFile=/run/zabbix/zabbix_server.pid"
		echo "SocketDir=/run/zabbix"
		echo "FpingLocation=/usr/bin/fping"
		echo "DBHost=$DB_SERVER_HOST"
		echo "DBPort=$DB_SERVER_PORT"
		echo "DBName=$POSTGRES_DB"
		echo "DBUser=$POSTGRES_USER"
		echo "DBPassword=$POSTGRES_PASSWORD"
		[ "$DB_SERVER_SCHEMA" = public ] || echo "DBSchema=$DB_SERVER_SCHEMA"
		# ZBX_CACHESIZE=64M -> CacheSize=64M: the parameter names are the sample configuration's
		local option
		grep -o '^### Option: [A-Za-z0-9.]*' "$SAMPLE" | cut -d' ' -f3 | while read -r option; do
			local var="ZBX_${option^^}"
			var="${var//./_}"
			if [ -n "${!var:-}" ]; then
				echo "$option=${!var}"
			fi
		done
	} > "$CONF.new"
	chown root:zabbix "$CONF.new"
	chmod 0640 "$CONF.new"
	mv "$CONF.new" "$CONF"
}

wait_for_database() {
	local tries=0
	until psql -qtAX -c 'SELECT 1' >/dev/null 2>&1; do
		tries=$((tries + 1))
		if [ $((tries % 10)) -eq 1 ]; then
			echo "** PostgreSQL at $DB_SERVER_HOST:$DB_SERVER_PORT is not answering yet"
		fi
		sleep 1
	done
}

create_schema() {
	local tables rows
	tables="$(psql -qtAX -c "SELECT count(*) FROM information_schema.tables WHERE table_schema = '$DB_SERVER_SCHEMA' AND table_name = 'dbversion'")"
	if [ "$tables" != 0 ]; then
		rows="$(psql -qtAX -c 'SELECT count(*) FROM dbversion')"
		if [ "$rows" = 0 ]; then
			echo >&2 "** database $POSTGRES_DB has table dbversion but no row: an interrupted import? (expected an empty database or a complete Zabbix schema)"
			exit 1
		fi
		echo "** database $POSTGRES_DB already holds the Zabbix schema"
		return
	fi
	echo "** creating the Zabbix schema in database $POSTGRES_DB"
	# one transaction: an import cut short leaves an empty database, tried again at the next start
	zcat "$SQL/schema.sql.gz" "$SQL/images.sql.gz" "$SQL/data.sql.gz" \
		| psql -qX -1 -v ON_ERROR_STOP=1 >/dev/null 2>/tmp/import.err \
		|| { grep -v WARNING /tmp/import.err >&2; exit 1; }
	echo "** Zabbix schema created"
}

if [ "${1:-}" = /usr/sbin/zabbix_server ]; then
	setup_env
	write_config
	wait_for_database
	create_schema
	unset PGPASSWORD POSTGRES_PASSWORD
	mkdir -p /run/zabbix
	chown zabbix:zabbix /run/zabbix
	echo "** starting Zabbix server $ZBX_VERSION"
fi

exec "$@"
