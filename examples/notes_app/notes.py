"""notes: a deliberately small app to show the orchestrator runs any app, not only ours.

A plain WSGI app (no Flask) over one PostgreSQL table, served by waitress, logging one JSON
line per request on stdout. Commands: `python notes.py migrate` creates the table;
`python notes.py serve --host H --port P` serves it. The database comes from NOTES_DSN.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import psycopg

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def log(message: str, **fields: Any) -> None:
    record = {"timestamp": datetime.now(UTC).isoformat(), "message": message, **fields}
    print(json.dumps(record), flush=True)


def connect() -> psycopg.Connection[Any]:
    return psycopg.connect(os.environ["NOTES_DSN"], autocommit=True)


def migrate() -> None:
    with connect() as db:
        db.execute("CREATE TABLE IF NOT EXISTS note (id serial PRIMARY KEY, text text NOT NULL)")
    log("migrated")


def respond(start: StartResponse, status: str, body: Any) -> Iterable[bytes]:
    data = json.dumps(body).encode()
    start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
    started = time.perf_counter()
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "/")
    status, body = route(method, path, environ)
    log(
        f"{method} {path} {status.split()[0]}",
        test_id=environ.get("HTTP_X_TEST_ID"),
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return respond(start, status, body)


def route(method: str, path: str, environ: dict[str, Any]) -> tuple[str, Any]:
    try:
        with connect() as db:
            if (method, path) == ("GET", "/health/ready"):
                db.execute("SELECT 1 FROM note LIMIT 1")
                return "200 OK", {"ready": True}
            if (method, path) == ("GET", "/notes"):
                rows = db.execute("SELECT id, text FROM note ORDER BY id").fetchall()
                return "200 OK", [{"id": i, "text": t} for i, t in rows]
            if (method, path) == ("POST", "/notes"):
                size = int(environ.get("CONTENT_LENGTH") or 0)
                text = json.loads(environ["wsgi.input"].read(size) or b"{}").get("text")
                if not isinstance(text, str) or not text:
                    return "400 Bad Request", {"error": "text must be a non-empty string"}
                row = db.execute("INSERT INTO note (text) VALUES (%s) RETURNING id", [text])
                return "201 Created", {"id": row.fetchone()[0], "text": text}  # type: ignore[index]
            if (method, path) == ("DELETE", "/notes"):
                db.execute("TRUNCATE note RESTART IDENTITY")
                return "200 OK", {"reset": True}
    except psycopg.Error as exc:
        return "503 Service Unavailable", {"error": f"database: {type(exc).__name__}"}
    except ValueError:
        return "400 Bad Request", {"error": "the body is not JSON"}
    return "404 Not Found", {"error": f"no route {method} {path}"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="notes")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate")
    serve = commands.add_parser("serve")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    if args.command == "migrate":
        migrate()
        return 0
    import waitress

    log("serving", host=args.host, port=args.port)
    waitress.serve(app, host=args.host, port=args.port, threads=8, _quiet=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
