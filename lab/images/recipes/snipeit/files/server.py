"""Snipe-IT stand-in: / 302 to /login and /login 200 as Snipe-IT answers, only while its MariaDB answers.

Snipe-IT's code cannot be had offline; its dependency can. Like the real application (Laravel), every
request that renders a page connects to the database with DB_HOST, DB_PORT, DB_DATABASE, DB_USERNAME and
DB_PASSWORD and reads the settings table; when that fails the answer is Laravel's 500 "Server Error". At
start, as the real image runs `php artisan migrate`, it creates its tables (migrations, settings) once the
database accepts the credentials. A missing APP_KEY is a 500 as in Laravel.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pymysql

STANDS_IN_FOR = "v7.1.16"  # the upstream tag this image is pushed under
PORT = int(os.environ.get("STANDIN_PORT") or 80)
MIGRATIONS = (
    ("CREATE TABLE IF NOT EXISTS migrations (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, "
    "migration VARCHAR(255) NOT NULL, batch INT NOT NULL)"),
    ("CREATE TABLE IF NOT EXISTS settings (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, "
    "site_name VARCHAR(100) NOT NULL DEFAULT 'Snipe-IT Asset Management', created_at TIMESTAMP NULL)"),
)
LOGIN = ("<!doctype html><html><head><title>{site} (lab stand-in)</title></head><body>"
         "<form method=POST action=/login><input name=username><input type=password name=password>"
         "<button>Login</button></form></body></html>")
SERVER_ERROR = b"<!doctype html><title>Server Error</title><h1>500 | Server Error</h1>"


def connect() -> pymysql.connections.Connection:
    """A connection with the declared credentials (the real app's config/database.php `mysql` connection)."""
    return pymysql.connect(host=os.environ.get("DB_HOST", "127.0.0.1"), port=int(os.environ.get("DB_PORT") or 3306),
                           user=os.environ.get("DB_USERNAME", "snipeit"), password=os.environ.get("DB_PASSWORD", ""),
                           database=os.environ.get("DB_DATABASE", "snipeit"), connect_timeout=3, read_timeout=5)


def site_name() -> str:
    """Read the site's name from the settings table: the database query every page of Snipe-IT makes."""
    with connect() as conn, conn.cursor() as cursor:
        cursor.execute("SELECT site_name FROM settings ORDER BY id LIMIT 1")
        row = cursor.fetchone()
    if row is None:
        raise pymysql.err.ProgrammingError(1146, "settings holds no row yet (migrations not run)")
    return row[0]


def migrate() -> None:
    """Create the tables once the database accepts the credentials, retrying as the real entrypoint waits."""
    while True:
        try:
            with connect() as conn, conn.cursor() as cursor:
                for statement in MIGRATIONS:
                    cursor.execute(statement)
                cursor.execute("SELECT COUNT(*) FROM settings")
                if cursor.fetchone()[0] == 0:
                    cursor.execute("INSERT INTO settings (created_at) VALUES (NOW())")
                    cursor.execute("INSERT INTO migrations (migration, batch) VALUES ('lab_standin_settings', 1)")
                conn.commit()
            print("migrations done", flush=True)
            return
        except pymysql.MySQLError as exc:
            print(f"migrate: database not ready: {describe(exc)}", flush=True)
            time.sleep(2)


def describe(exc: pymysql.MySQLError) -> str:
    """A database error as Laravel logs it (SQLSTATE code and the server's message; never the password)."""
    code, message = (exc.args + ("", ""))[:2]
    return f"SQLSTATE[HY000] [{code}] {message}"


class Handler(BaseHTTPRequestHandler):
    """The routes the health suite and Traefik use: / and /login."""

    server_version = "Apache"

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """Answer one GET: a page only when the database answers, else 500 as Laravel does."""
        path = self.path.split("?", 1)[0]
        if path not in ("/", "/login"):
            self._send(HTTPStatus.NOT_FOUND, b"<!doctype html><title>Not Found</title><h1>404 | Not Found</h1>")
            return
        if not os.environ.get("APP_KEY"):
            sys.stderr.write("production.ERROR: No application encryption key has been specified.\n")
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, SERVER_ERROR)
            return
        try:
            site = site_name()
        except pymysql.MySQLError as exc:
            sys.stderr.write(f"production.ERROR: {describe(exc)}\n")
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, SERVER_ERROR)
            return
        if path == "/":
            base = os.environ.get("APP_URL") or f"http://{self.headers.get('Host', 'localhost')}"
            self._send(HTTPStatus.FOUND, b"", {"Location": f"{base.rstrip('/')}/login"})
        else:
            self._send(HTTPStatus.OK, LOGIN.format(site=site).encode())


if __name__ == "__main__":
    if sys.argv[1:] == ["--version"]:
        print(f"lab stand-in for Snipe-IT {STANDS_IN_FOR} (PyMySQL {pymysql.__version__})")
        sys.exit(0)
    threading.Thread(target=migrate, daemon=True).start()
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
