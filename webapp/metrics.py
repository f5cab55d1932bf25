"""Prometheus metrics: request counts and latency, inference time. One registry per app (no module globals)."""
from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess

_LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The app's metric objects."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("roomfit_http_requests_total", "HTTP requests by endpoint, method and status",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("roomfit_http_request_duration_seconds", "Request latency by endpoint",
                                 ["endpoint"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.inference = Histogram("roomfit_inference_seconds", "Model invoke time per prediction",
                                   buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.shed = Counter("roomfit_shed_total", "Requests refused by load shedding, by reason",
                            ["reason"], registry=self.registry)
        self.predictions = Counter("roomfit_predictions_total", "Predictions by detected label",
                                   ["label"], registry=self.registry)

    def exposition(self) -> Response:
        """The Prometheus text page; under gunicorn with PROMETHEUS_MULTIPROC_DIR it sums all workers."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = self.registry
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> Metrics:
    """Create the app's metrics and time every request."""
    metrics = Metrics()

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _record(response: Response) -> Response:
        started = g.get("request_started")
        # Label by endpoint name, not path, so unknown URLs cannot blow up the label set.
        endpoint = request.endpoint or "unmatched"
        if started is not None:
            metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
        metrics.requests.labels(endpoint, request.method, str(response.status_code)).inc()
        return response

    return metrics
