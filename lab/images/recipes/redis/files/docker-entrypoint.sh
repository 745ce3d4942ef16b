#!/bin/sh
# The official redis image's entrypoint: `-opt` or `x.conf` first means redis-server; the server runs as
# user redis, owning /data. Protected mode is off unless the arguments say otherwise (the official image
# builds Redis with that default; Debian's keeps it on).
set -e

if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

if [ "$1" = redis-server ]; then
	shift
	if [ "${1%.conf}" != "${1:-}" ]; then
		conf="$1"
		shift
		set -- redis-server "$conf" --protected-mode no "$@"
	else
		set -- redis-server --protected-mode no "$@"
	fi
	if [ "$(id -u)" = 0 ]; then
		find . \! -user redis -exec chown redis '{}' +
		exec gosu redis "$@"
	fi
fi

exec "$@"
