"""Checks every request passes before its view runs: query strings the database can store."""

from __future__ import annotations

from flask import Flask, request

from backend.utils.errors import RequestValidationException
from backend.utils.text_safety import text_problem


def init_app(app: Flask) -> None:
    @app.before_request
    def refuse_unstorable_query_text() -> None:
        # `?status=%00` would reach a SQL parameter and fail there as a 500.
        for name, value in request.args.items(multi=True):
            problem = text_problem(name) or text_problem(value)
            if problem:
                raise RequestValidationException(f"query parameter {name!r}", problem)
