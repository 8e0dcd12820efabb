"""Server-rendered web UI of the command-bus demo.

The pages are shells: they render layout, forms and row templates, and the browser
fills them from the JSON API (``/api/...``) with ``static/app.js`` and one script per page.
"""

from flask import Blueprint

web_bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

from backend.web import routes  # noqa: E402  (registers the views on web_bp)

__all__ = ["routes", "web_bp"]
