"""RoomFit's gunicorn worker (`worker_class` in gunicorn.conf.py): gthread, with three changes for hostile clients.

1. Requests are buffered in the worker's event loop before a thread sees them. gthread hands a connection to a
   pool thread as soon as its first bytes arrive, and the thread then blocks reading the rest, so 64 clients that
   send headers and then trickle (or stall) the body pin every thread and nothing else is answered. Here the poller
   collects the request line, headers and body without a thread; only a complete request is queued for one. A
   client that has not finished its request within REQUEST_READ_TIMEOUT seconds gets a 408 and is closed.
2. Each request carries the monotonic time it was complete (`roomfit.arrived_at` in the WSGI environ), so the app
   can drop work that waited too long (webapp.shedding) before the model runs.
3. gunicorn's own errors (a bad request line, oversized headers, a malformed chunked body) answer in the API's JSON
   error shape instead of gunicorn's HTML page.
"""
from __future__ import annotations

import errno
import io
import json
import os
import selectors
import socket
import threading
import time
from functools import partial
from typing import Any, Callable, Iterable

from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import _DEFER as _DEFER_SENTINEL  # a connection sent back to the poller
from gunicorn.workers.gthread import TConn, ThreadWorker

READ_CHUNK = 64 * 1024
# Headers beyond this are handed to gunicorn's parser unfinished: it answers 431 (limit_request_field_size is 8190).
MAX_HEADER_BYTES = 64 * 1024


def _env_float(name: str, default: float) -> float:
    """A float from the environment (the worker has no Flask config; gunicorn.conf.py documents the names)."""
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


class RequestScan:
    """Whether a growing buffer holds a whole HTTP/1 request (or enough to refuse it: malformed or over the limits).

    Incremental for chunked bodies: the chunks already walked are not walked again on the next read, so a body sent
    in one-byte chunks costs linear, not quadratic, time in the event loop."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self._chunk_pos = 0  # start of the first chunk-size line not yet walked (0: headers not parsed yet)

    def complete(self, buf: bytes | bytearray) -> bool:
        """Whether buf (the bytes received so far) is a whole request."""
        if self._chunk_pos:
            return self._chunks_complete(buf)
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return len(buf) > MAX_HEADER_BYTES
        head = bytes(buf[:end]).lower()
        body_start = end + 4
        lengths: list[str] = []
        chunked = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip()
            if name == b"content-length":
                lengths.append(value.strip().decode("latin-1"))
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
        if chunked:
            self._body_start = self._chunk_pos = body_start
            return self._chunks_complete(buf)
        if not lengths:
            return True
        if len(set(lengths)) != 1 or not lengths[0].isdigit():
            return True  # conflicting or bad Content-Length: the parser refuses it
        length = int(lengths[0])
        # Over the upload limit: dispatch now, so the app answers 413 without the body ever being read.
        return length > self.max_body or len(buf) - body_start >= length

    def _chunks_complete(self, buf: bytes | bytearray) -> bool:
        """Walk the chunks received since the last call; True at the last chunk or at anything malformed."""
        if len(buf) - self._body_start > self.max_body:
            return True  # over the limit: the app answers 413
        pos = self._chunk_pos
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                return len(buf) - pos > 1024  # a chunk-size line is short; a long one is an error for the parser
            size_text = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
            if not size_text.isalnum():
                return True
            try:
                size = int(size_text, 16)
            except ValueError:
                return True
            if size == 0:
                # Last chunk: optional trailer fields, then an empty line.
                return buf.startswith(b"\r\n", line_end + 2) or buf.find(b"\r\n\r\n", line_end) >= 0
            if line_end + 2 + size + 2 > len(buf):
                return False
            pos = self._chunk_pos = line_end + 2 + size + 2


def _expects_continue(buf: bytes | bytearray) -> bool:
    """Whether complete headers in buf ask for `100 Continue` (curl does for bodies over 1 MB)."""
    end = buf.find(b"\r\n\r\n")
    head = bytes(buf[:end]).lower() if end >= 0 else b""
    return b"\r\nexpect: 100-continue" in head and b" http/1.0\r\n" not in head.split(b"\r\n", 1)[0] + b"\r\n"


# gunicorn's own client errors, as (status, reason, code) in the API's error vocabulary.
_PARSE_ERRORS: list[tuple[type, int, str, str]] = [
    (http_errors.LimitRequestLine, 414, "URI Too Long", "uri_too_long"),
    (http_errors.LimitRequestHeaders, 431, "Request Header Fields Too Large", "headers_too_large"),
    (http_errors.UnsupportedTransferCoding, 501, "Not Implemented", "not_implemented"),
    (http_errors.ExpectationFailed, 417, "Expectation Failed", "expectation_failed"),
    (http_errors.ForbiddenProxyRequest, 403, "Forbidden", "forbidden"),
    (http_errors.ConfigurationProblem, 500, "Internal Server Error", "internal_error"),
    (http_errors.ParseException, 400, "Bad Request", "bad_request"),
]


def error_bytes(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 response carrying the API's JSON error body, closing the connection."""
    body = json.dumps({"success": False, "error": {"code": code, "message": message}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class RoomfitWorker(ThreadWorker):
    """gthread that buffers whole requests in its event loop, stamps their arrival and answers its errors in JSON."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_timeout = _env_float("REQUEST_READ_TIMEOUT", 10.0)
        self.max_body = int(_env_float("MAX_CONTENT_LENGTH", 10 * 1024 * 1024))
        self.buffering: dict[TConn, float] = {}  # connection -> deadline for its request to be complete
        self._local = threading.local()
        # TLS and HTTP/2 read their own handshakes from the socket: those connections are served as gthread does.
        self._buffer_requests = not self.cfg.is_ssl and getattr(self.cfg, "http2_cleartext", "off") in ("off", None)

    # ---- event loop (main thread) ----

    def accept(self, listener: socket.socket) -> None:
        """Accept a connection and start buffering its first request."""
        if not self._buffer_requests:
            return super().accept(listener)
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = TConn(self.cfg, client_sock, client_addr, listener.getsockname())  # non-blocking
        self._start_buffering(conn)

    def on_client_socket_readable(self, conn: TConn, client: Any) -> None:
        """A kept-alive connection has its next request coming: buffer it too."""
        if not self._buffer_requests:
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self._start_buffering(conn)
        self._on_readable(conn)

    def finish_request(self, conn: TConn, fs: Any) -> None:
        """After a kept-alive response: bytes the client pipelined behind it are buffered like a new request (gthread
        would hand them straight to a thread, which then blocks if the next request is incomplete)."""
        try:
            result = fs.result() if not fs.cancelled() else False
        except Exception:  # noqa: BLE001 - gthread's own finish_request handles (and closes) these
            result = False
        parser = conn.parser
        if (self._buffer_requests and self.alive and result and result is not _DEFER_SENTINEL
                and parser is not None and parser.unreader.buf.getvalue()):
            leftover = parser.unreader.take_buffered()
            conn.sock.setblocking(False)
            self._start_buffering(conn)
            conn.rf_buf += leftover
            if conn.rf_scan.complete(conn.rf_buf):
                self._dispatch(conn)
            return
        super().finish_request(conn, fs)

    def _start_buffering(self, conn: TConn) -> None:
        conn.rf_buf = bytearray()
        conn.rf_scan = RequestScan(self.max_body)
        conn.rf_continued = False
        self.buffering[conn] = time.monotonic() + self.read_timeout
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: TConn, _fileobj: Any = None) -> None:
        """Read what the client has sent; queue the request for a thread once it is complete."""
        if conn not in self.buffering:
            return
        try:
            while True:
                chunk = conn.sock.recv(READ_CHUNK)
                if not chunk:  # the client went away before finishing its request
                    self._drop(conn)
                    return
                conn.rf_buf += chunk
                if len(chunk) < READ_CHUNK:
                    break
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self._drop(conn)
            return
        buf = conn.rf_buf
        if conn.rf_scan.complete(buf):
            self._dispatch(conn)
        elif not conn.rf_continued and _expects_continue(buf):
            conn.rf_continued = True
            try:  # the client waits for this before sending its body (gunicorn would send it only from a thread)
                conn.sock.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            except OSError:
                self._drop(conn)

    def _dispatch(self, conn: TConn) -> None:
        del self.buffering[conn]
        self.poller.unregister(conn.sock)
        conn.rf_ready = bytes(conn.rf_buf)
        conn.rf_buf = bytearray()
        conn.rf_arrived = time.monotonic()
        conn.data_ready = True
        self.enqueue_req(conn)

    def _drop(self, conn: TConn, response: bytes | None = None) -> None:
        """Stop buffering a connection and close it, after a best-effort error response."""
        self.buffering.pop(conn, None)
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass
        if response:
            try:
                conn.sock.send(response)
            except OSError:
                pass  # the client is gone or not reading: nothing more to tell it
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Close connections whose request is still incomplete after the read timeout (with a 408)."""
        super().murder_pending()
        now = time.monotonic()
        expired = [conn for conn, deadline in self.buffering.items() if deadline <= now]
        for conn in expired:
            started = bool(conn.rf_buf)
            if started:
                self.log.warning("Closing slow client ip=%s: request incomplete after %.0f s (%d bytes)",
                                 conn.client[0] if conn.client else "?", self.read_timeout, len(conn.rf_buf))
            self._drop(conn, error_bytes(408, "Request Timeout", "request_timeout",
                                         f"the request was not complete within {self.read_timeout:g} s")
                       if started else None)

    # ---- request threads ----

    def handle(self, conn: TConn) -> Any:
        """Serve one request on a pool thread, from the bytes the event loop buffered."""
        data = getattr(conn, "rf_ready", None)
        self._local.arrived_at = getattr(conn, "rf_arrived", None) or time.monotonic()
        if data is not None:
            conn.rf_ready = None
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(data)
        return super().handle(conn)

    def load_wsgi(self) -> None:
        """Wrap the app so each request knows when it arrived and cannot block its thread reading a stalled body."""
        super().load_wsgi()
        app = self.wsgi
        read_timeout = self.read_timeout
        max_body = self.max_body
        local = self._local

        def roomfit_app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
            environ["roomfit.arrived_at"] = getattr(local, "arrived_at", None) or time.monotonic()
            sock = environ.get("gunicorn.socket")
            if sock is not None:
                # Bodies are buffered already; this bounds any read the buffering did not cover.
                sock.settimeout(read_timeout)
            if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
                # Read the chunked body here, where gunicorn's parse errors can still be told from the app's.
                try:
                    body = environ["wsgi.input"].read(max_body + 1)
                except http_errors.ParseException as exc:
                    return _json_error(start_response, 400, "Bad Request", "bad_request",
                                       f"malformed chunked body: {exc}")
                except OSError as exc:
                    return _json_error(start_response, 408, "Request Timeout", "request_timeout",
                                       f"the request body could not be read: {exc}")
                if len(body) > max_body:
                    return _json_error(start_response, 413, "Request Entity Too Large", "payload_too_large",
                                       f"upload is larger than the {max_body // (1024 * 1024)} MB limit")
                environ["wsgi.input"] = io.BytesIO(body)
                environ["CONTENT_LENGTH"] = str(len(body))
            return app(environ, start_response)

        self.wsgi = roomfit_app

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """gunicorn's own errors, answered in the API's JSON error shape instead of an HTML page."""
        for kind, status, reason, code in _PARSE_ERRORS:
            if isinstance(exc, kind):
                break
        else:
            status, reason, code = 500, "Internal Server Error", "internal_error"
        if status == 500:
            self.log.exception("Error handling request")
            message = "internal server error"
        else:
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
            message = str(exc) or reason
        try:
            client.settimeout(1.0)
            client.sendall(error_bytes(status, reason, code, message))
        except OSError:
            self.log.debug("Failed to send error message.")


def _json_error(start_response: Callable, status: int, reason: str, code: str, message: str) -> list[bytes]:
    """A JSON error answered from the WSGI wrapper (before Flask), closing the connection."""
    # gunicorn drops an app's Connection header; its response object is what closes (the body stream is broken).
    force_close = getattr(getattr(start_response, "__self__", None), "force_close", None)
    if force_close is not None:
        force_close()
    body = json.dumps({"success": False, "error": {"code": code, "message": message}}).encode()
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
