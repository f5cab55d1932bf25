"""One JSON error shape for the API: {"success": false, "error": {"code", "message"}}."""
from __future__ import annotations

import logging

from urllib.parse import urlsplit

from flask import Flask, Response, jsonify, render_template, request
from flask.globals import request_ctx
from markupsafe import escape
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Machine-readable codes for the HTTP errors Werkzeug raises on its own. Any other status gets bad_request (4xx) or
# internal_error (5xx), so the documented list (openapi.ERROR_CODES) is closed.
_HTTP_CODES = {
    400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
    413: "payload_too_large", 414: "uri_too_long", 415: "unsupported_media_type", 422: "unprocessable",
    429: "rate_limited", 431: "headers_too_large", 501: "not_implemented", 503: "service_unavailable",
}
API_PREFIXES = ("/api/", "/predict", "/healthz", "/readyz", "/metrics", "/openapi.json")


class ApiError(Exception):
    """An error to report to the client as JSON with an HTTP status, a code and a one-line message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """Build the JSON error response."""
    resp = jsonify({"success": False, "error": {"code": code, "message": message}})
    resp.status_code = status
    resp.headers.update(headers or {})
    return resp


def _http_code(status: int) -> str:
    """The error code of an HTTP status raised by Werkzeug."""
    return _HTTP_CODES.get(status, "bad_request" if status < 500 else "internal_error")


def _error_page(status: int, title: str, message: str) -> tuple[str, int]:
    """The HTML error page; a bare one when the request has no URL adapter (a Host header Werkzeug refused), since
    the page's links cannot be built then and the error page itself must never fail."""
    if request_ctx.url_adapter is None:
        html = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
                f"</head><body><h1>{status} {escape(title)}</h1><p>{escape(message)}</p></body></html>")
        return html, status
    return render_template("error.html", status=status, title=title, message=message), status


def _wants_json() -> bool:
    """API paths answer errors in JSON; pages answer with an HTML page."""
    return request.path.startswith(API_PREFIXES) or request.accept_mimetypes.best == "application/json"


def register_error_handlers(app: Flask) -> None:
    """Install handlers so no client ever sees a traceback or Werkzeug's HTML for an API call."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        log.info("%s %s -> %d %s: %s", request.method, request.path, exc.status, exc.code, exc.message)
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        code = _http_code(status)
        message = exc.description or exc.name
        if status == 413:
            message = f"upload is larger than the {app.config['MAX_CONTENT_LENGTH'] // (1024 * 1024)} MB limit"
        if _wants_json():
            allowed = getattr(exc, "valid_methods", None)
            return error_response(status, code, message, {"Allow": ", ".join(allowed)} if allowed else None)
        return _error_page(status, exc.name, message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # A bug, not bad input: log the traceback for us, give the client a generic answer.
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return error_response(500, "internal_error", "internal server error")
        return _error_page(500, "Server error", "Something went wrong on our side.")

    @app.after_request
    def _relative_redirects(response: Response) -> Response:
        # Werkzeug's own redirects (e.g. //a -> /a) are absolute URLs built from the client's Host header: an open
        # redirect for whoever can set that header. A path is enough for the client to follow.
        location = response.headers.get("Location")
        if location and 300 <= response.status_code < 400:
            parts = urlsplit(location)
            if parts.netloc and parts.netloc == request.host:
                response.headers["Location"] = parts.path + (f"?{parts.query}" if parts.query else "")
        return response
