"""One JSON error shape for the API: {"success": false, "error": {"code", "message"}}."""
from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Machine-readable codes for the HTTP errors Werkzeug raises on its own.
_HTTP_CODES = {
    400: "bad_request", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "unprocessable", 429: "rate_limited", 503: "model_not_ready",
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
        code = _HTTP_CODES.get(status, "http_error")
        message = exc.description or exc.name
        if status == 413:
            message = f"upload is larger than the {app.config['MAX_CONTENT_LENGTH'] // (1024 * 1024)} MB limit"
        if _wants_json():
            allowed = getattr(exc, "valid_methods", None)
            return error_response(status, code, message, {"Allow": ", ".join(allowed)} if allowed else None)
        return render_template("error.html", status=status, title=exc.name, message=message), status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        # A bug, not bad input: log the traceback for us, give the client a generic answer.
        log.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return error_response(500, "internal_error", "internal server error")
        return render_template("error.html", status=500, title="Server error",
                               message="Something went wrong on our side."), 500
