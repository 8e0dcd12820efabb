"""Server-rendered web UI of the command-bus demo.

The pages are shells: they render layout, forms and row templates, and the browser
fills them from the JSON API (``/api/...``) with ``static/app.js`` and one script per page.
"""

from flask import Blueprint

# Not "/static": every Flask app made with the default static_folder (``Flask(__name__)``,
# as create_app does) owns ``/static/<path:filename>`` and would shadow a blueprint route
# there, so the UI's scripts would 404. Templates build asset URLs with url_for("web.static").
STATIC_URL_PATH = "/web/static"

web_bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path=STATIC_URL_PATH,
)

from backend.web import routes  # noqa: E402  (registers the views on web_bp)

__all__ = ["STATIC_URL_PATH", "routes", "web_bp"]
