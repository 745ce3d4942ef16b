#!/usr/bin/env bash
# The official mariadb image's contract, for Debian's MariaDB: on an empty datadir, install the system
# tables, set the root password, create MARIADB_DATABASE and MARIADB_USER, the healthcheck user and its
# .my-healthcheck.cnf, run /docker-entrypoint-initdb.d/*, then exec the server as user mysql. A datadir
# that holds a database is started as it is. Passwords go to the server on its socket, never on a command
# line or in a log.
set -Eeo pipefail
DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock

# usage: file_env VAR [DEFAULT]: MARIADB_x from $MARIADB_x, $MYSQL_x or their _FILE forms (Docker secrets)
file_env() {
	local var="$1" def="${2:-}" mysql="MYSQL_${1#MARIADB_}" val
	val="$def"
	for name in "$var" "$mysql"; do
		local file="${name}_FILE"
		if [ "${!name:-}" ] && [ "${!file:-}" ]; then
			echo >&2 "error: both $name and $file are set (but are exclusive)"
			exit 1
		fi
		if [ "${!name:-}" ]; then val="${!name}"; break; fi
		if [ "${!file:-}" ]; then val="$(< "${!file}")"; break; fi
	done
	export "$var"="$val"
	unset "${var}_FILE" "${mysql}_FILE"
}

# a string as an SQL literal's contents: backslashes and quotes escaped
sql_escape() {
	local value="${1//\\/\\\\}"
	printf '%s' "${value//\'/\\\'}"
}

setup_env() {
	file_env MARIADB_ROOT_PASSWORD
	file_env MARIADB_ALLOW_EMPTY_ROOT_PASSWORD
	file_env MARIADB_RANDOM_ROOT_PASSWORD
	file_env MARIADB_ROOT_HOST '%'
	file_env MARIADB_DATABASE
	file_env MARIADB_USER
	file_env MARIADB_PASSWORD
}

verify_minimum_env() {
	if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
		echo >&2 "error: database is uninitialized and password option is not specified"
		echo >&2 "  You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD_HASH, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD"
		exit 1
	fi
	if [ "$MARIADB_USER" = root ]; then
		echo >&2 "error: MARIADB_USER=root: the root user is already created (use MARIADB_ROOT_PASSWORD)"
		exit 1
	fi
	if [ -n "$MARIADB_USER" ] && [ -z "$MARIADB_PASSWORD" ]; then
		echo >&2 "error: MARIADB_USER is set without MARIADB_PASSWORD"
		exit 1
	fi
}

temp_server_start() {
	"$@" --skip-networking --default-time-zone=SYSTEM --socket="$SOCKET" --wsrep_on=OFF \
		--loose-innodb_buffer_pool_load_at_startup=0 --skip-log-bin &
	TEMP_PID=$!
	for _ in $(seq 120); do
		if mariadb --protocol=socket --socket="$SOCKET" -uroot --skip-ssl -e 'SELECT 1' >/dev/null 2>&1; then
			return
		fi
		kill -0 "$TEMP_PID" 2>/dev/null || { echo >&2 "error: the temporary server exited"; exit 1; }
		sleep 0.5
	done
	echo >&2 "error: the temporary server did not start within 60 s"
	exit 1
}

install_database() {
	echo "Initializing database files"
	mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal --skip-test-db \
		--default-time-zone=SYSTEM --skip-log-bin --expire-logs-days=0 --loose-innodb_buffer_pool_load_at_startup=0 \
		--loose-innodb_buffer_pool_dump_at_shutdown=0 >/dev/null
	temp_server_start "$@"
	local root_password="$MARIADB_ROOT_PASSWORD" health
	if [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
		root_password="$(head -c 24 /dev/urandom | base64)"
		echo "GENERATED ROOT PASSWORD: (not shown by this image; set MARIADB_ROOT_PASSWORD to know it)"
	fi
	health="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"
	{
		echo "SET @@SESSION.SQL_LOG_BIN=0; SET @@SESSION.SQL_MODE=REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '');"
		echo "DROP USER IF EXISTS root@'127.0.0.1', root@'::1'; DELETE FROM mysql.global_priv WHERE user = '' ;"
		echo "CREATE USER healthcheck@'127.0.0.1' IDENTIFIED BY '$health';"
		echo "CREATE USER healthcheck@'::1' IDENTIFIED BY '$health';"
		echo "CREATE USER healthcheck@localhost IDENTIFIED BY '$health';"
		if [ -n "$root_password" ]; then
			echo "SET PASSWORD FOR root@localhost = PASSWORD('$(sql_escape "$root_password")');"
		fi
		if [ "$MARIADB_ROOT_HOST" != localhost ]; then
			echo "CREATE USER root@'$(sql_escape "$MARIADB_ROOT_HOST")' IDENTIFIED BY '$(sql_escape "$root_password")';"
			echo "GRANT ALL ON *.* TO root@'$(sql_escape "$MARIADB_ROOT_HOST")' WITH GRANT OPTION;"
		fi
		if [ -n "$MARIADB_DATABASE" ]; then
			echo "CREATE DATABASE IF NOT EXISTS \`${MARIADB_DATABASE//\`/\`\`}\`;"
		fi
		if [ -n "$MARIADB_USER" ]; then
			echo "CREATE USER '$(sql_escape "$MARIADB_USER")'@'%' IDENTIFIED BY '$(sql_escape "$MARIADB_PASSWORD")';"
			if [ -n "$MARIADB_DATABASE" ]; then
				echo "GRANT ALL ON \`${MARIADB_DATABASE//\`/\`\`}\`.* TO '$(sql_escape "$MARIADB_USER")'@'%';"
			fi
		fi
		echo "FLUSH PRIVILEGES;"
	} | mariadb --protocol=socket --socket="$SOCKET" -uroot --skip-ssl --binary-mode
	printf '[mariadb-client]\nport=3306\nsocket=%s\nuser=healthcheck\npassword=%s\n' "$SOCKET" "$health" \
		> "$DATADIR/.my-healthcheck.cnf"
	chmod 0600 "$DATADIR/.my-healthcheck.cnf"
	local root_cnf
	root_cnf="$(mktemp)"
	printf '[client]\nuser=root\npassword=%s\nsocket=%s\n' "$root_password" "$SOCKET" > "$root_cnf"
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
			*.sh) echo "running $f"; . "$f" ;;
			*.sql) echo "running $f"; mariadb --defaults-extra-file="$root_cnf" --skip-ssl ${MARIADB_DATABASE:+"$MARIADB_DATABASE"} < "$f" ;;
			*.sql.gz) echo "running $f"; gunzip -c "$f" | mariadb --defaults-extra-file="$root_cnf" --skip-ssl ${MARIADB_DATABASE:+"$MARIADB_DATABASE"} ;;
			*.sql.xz) echo "running $f"; xzcat "$f" | mariadb --defaults-extra-file="$root_cnf" --skip-ssl ${MARIADB_DATABASE:+"$MARIADB_DATABASE"} ;;
			*) [ -e "$f" ] && echo "ignoring $f" ;;
		esac
	done
	rm -f "$root_cnf"
	kill "$TEMP_PID"
	wait "$TEMP_PID" || :
	echo "MariaDB init process done. Ready for start up."
}

if [ "${1:0:1}" = '-' ]; then
	set -- mariadbd "$@"
fi

if [ "$1" = mariadbd ] || [ "$1" = mysqld ]; then
	if [ "$(id -u)" = 0 ]; then
		mkdir -p "$DATADIR" /run/mysqld
		find "$DATADIR" /run/mysqld \! -user mysql -exec chown mysql:mysql '{}' +
		exec gosu mysql "$BASH_SOURCE" "$@"
	fi
	if [ ! -d "$DATADIR/mysql" ]; then
		setup_env
		verify_minimum_env
		install_database "$@"
	fi
fi

exec "$@"
