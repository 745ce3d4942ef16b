#!/usr/bin/env bash
# The official zabbix-web-nginx-pgsql image's contract, for Debian's Zabbix frontend: zabbix.conf.php
# written from ZBX_SERVER_HOST / ZBX_SERVER_PORT / DB_SERVER_HOST / DB_SERVER_PORT / POSTGRES_USER /
# POSTGRES_PASSWORD / POSTGRES_DB (or their _FILE forms) / DB_SERVER_SCHEMA / ZBX_SERVER_NAME / PHP_TZ,
# then php-fpm and nginx (in the foreground; the container stops when either stops).
set -Eeo pipefail

CONF=/etc/zabbix/zabbix.conf.php  # Debian's frontend reads it there

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

# a PHP single-quoted string literal
php_str() {
	local s="${1//\\/\\\\}"
	printf "'%s'" "${s//\'/\\\'}"
}

write_config() {
	: "${ZBX_SERVER_HOST:=zabbix-server}"
	: "${ZBX_SERVER_PORT:=10051}"
	: "${DB_SERVER_HOST:=postgres-server}"
	: "${DB_SERVER_PORT:=5432}"
	file_env POSTGRES_USER zabbix
	file_env POSTGRES_PASSWORD zabbix
	: "${POSTGRES_DB:=zabbix}"
	: "${DB_SERVER_SCHEMA:=}"
	: "${ZBX_SERVER_NAME:=}"
	: "${PHP_TZ:=Europe/Riga}"
	umask 027
	cat > "$CONF.new" <<PHP
<?php
// Written at container start from the environment (docker-entrypoint.sh).
\$DB['TYPE'] = 'POSTGRESQL';
\$DB['SERVER'] = $(php_str "$DB_SERVER_HOST");
\$DB['PORT'] = $(php_str "$DB_SERVER_PORT");
\$DB['DATABASE'] = $(php_str "$POSTGRES_DB");
\$DB['USER'] = $(php_str "$POSTGRES_USER");
\$DB['PASSWORD'] = $(php_str "$POSTGRES_PASSWORD");
\$DB['SCHEMA'] = $(php_str "$DB_SERVER_SCHEMA");
\$DB['ENCRYPTION'] = false;
\$DB['KEY_FILE'] = '';
\$DB['CERT_FILE'] = '';
\$DB['CA_FILE'] = '';
\$DB['VERIFY_HOST'] = false;
\$DB['CIPHER_LIST'] = '';
\$DB['VAULT_URL'] = '';
\$DB['VAULT_DB_PATH'] = '';
\$DB['VAULT_TOKEN'] = '';
\$DB['DOUBLE_IEEE754'] = true;
\$ZBX_SERVER = $(php_str "$ZBX_SERVER_HOST");
\$ZBX_SERVER_PORT = $(php_str "$ZBX_SERVER_PORT");
\$ZBX_SERVER_NAME = $(php_str "$ZBX_SERVER_NAME");
\$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;
PHP
	chown root:www-data "$CONF.new"
	mv "$CONF.new" "$CONF"
	umask 022
	sed -i "s|^php_value\[date.timezone\] = .*|php_value[date.timezone] = ${PHP_TZ//|/}|" /etc/php/8.4/fpm/pool.d/zabbix.conf
	unset POSTGRES_PASSWORD
}

if [ "${1:-}" = zabbix-web ]; then
	write_config
	mkdir -p /run/php
	chown www-data:www-data /var/lib/php/sessions
	echo "** starting the Zabbix frontend $ZBX_VERSION (php-fpm, nginx on 8080)"
	php-fpm8.4 --nodaemonize --fpm-config /etc/php/8.4/fpm/php-fpm.conf &
	fpm=$!
	nginx -g 'daemon off;' &
	web=$!
	stopping=
	trap 'stopping=1; kill -TERM "$fpm" "$web" 2>/dev/null' TERM INT
	# either one gone: stop the other, and let the restart policy start both again
	wait -n "$fpm" "$web" || true
	kill -TERM "$fpm" "$web" 2>/dev/null || true
	wait || true
	[ -n "$stopping" ] && exit 0
	echo >&2 "** php-fpm or nginx stopped: stopping the container"
	exit 1
fi

exec "$@"
