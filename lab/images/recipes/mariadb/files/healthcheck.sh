#!/usr/bin/env bash
# The official image's healthcheck.sh for the tests a declaration uses: --connect (a TCP connection is
# accepted) and --innodb_initialized (InnoDB is up), as the healthcheck user the entrypoint created at
# install (its password in the datadir's .my-healthcheck.cnf). --su-mysql and --no-defaults are accepted.
set -eo pipefail
CNF=/var/lib/mysql/.my-healthcheck.cnf

query() {
	mariadb --defaults-extra-file="$CNF" --protocol=tcp --host=127.0.0.1 --skip-ssl \
		--skip-column-names --batch -e "$1"
}

[ $# -gt 0 ] || set -- --connect
for test in "$@"; do
	case "$test" in
		--connect) query 'SELECT 1' >/dev/null ;;
		--innodb_initialized)
			[ "$(query "SELECT 1 FROM information_schema.ENGINES WHERE engine = 'innodb' AND support IN ('YES', 'DEFAULT', 'ENABLED')")" = 1 ] ;;
		--su-mysql|--no-defaults) ;;
		*) echo >&2 "healthcheck.sh: $test is not a test of this image (it has --connect and --innodb_initialized)"; exit 1 ;;
	esac
done
