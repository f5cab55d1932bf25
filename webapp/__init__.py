"""RoomFit web app: product gallery, cut-outs, the room view and the /predict REST API."""
from __future__ import annotations

import logging
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from werkzeug.middleware.proxy_fix import ProxyFix

from .cache import CutoutCache
from .config import Config
from .metrics import Metrics
from .ratelimit import TokenBucketLimiter
from .safefetch import FetchConfig, SafeFetcher
from .segmenter import SegmenterHolder
from .shedding import WorkGate

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Per-app objects built once: the model session, metrics, rate limiters, work gate, cut-out cache and URL
    fetcher."""

    segmenter: SegmenterHolder
    metrics: Metrics
    limiter: TokenBucketLimiter | None
    cache: CutoutCache
    fetcher: SafeFetcher
    intake_limiter: TokenBucketLimiter | None
    gate: WorkGate


def services() -> Services:
    """The current app's Services."""
    return current_app.extensions["roomfit"]


def _configure_logging(level: str) -> None:
    """Log to stdout (containers collect stdout) unless the host (gunicorn, pytest) already set logging up."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(stream=sys.stdout, level=level,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("webapp").setLevel(level)


def _fetch_config(app: Flask) -> FetchConfig:
    """The intake fetcher's limits; the private-network allowlist is for tests only."""
    allow = tuple(app.config["FETCH_ALLOW_NETWORKS"])
    if allow and not app.config["TESTING"]:
        raise RuntimeError("FETCH_ALLOW_NETWORKS is a test-only setting: it would let shoppers' URLs reach "
                           "private addresses")
    return FetchConfig(total_timeout=app.config["FETCH_TOTAL_TIMEOUT"], max_bytes=app.config["FETCH_MAX_BYTES"],
                       allow_networks=allow)


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Application factory: configuration from the environment, overridden by test_config."""
    app = Flask(__name__)
    app.config.from_mapping(Config.from_env().as_mapping())
    if test_config:
        app.config.from_mapping(test_config)
    if test_config and "RATELIMIT_ENABLED" not in test_config and app.config["TESTING"]:
        app.config["RATELIMIT_ENABLED"] = False  # tests turn the limiter on explicitly
    if not app.config["SECRET_KEY"]:
        # Required when serving; debug, tests and one-off CLI commands (init-db, import-catalogue) may go without.
        if not (app.config["DEBUG"] or app.config["TESTING"] or click.get_current_context(silent=True)):
            raise RuntimeError("SECRET_KEY must be set (environment variable) outside debug and testing")
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    _configure_logging(app.config["LOG_LEVEL"])
    if app.config["PROXY_COUNT"] > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_COUNT"], x_proto=app.config["PROXY_COUNT"])

    from . import db, errors, intake, metrics, pages, security
    from .api import bp as api_bp

    db.init_app(app)
    errors.register_error_handlers(app)
    security.init_app(app)
    app_metrics = metrics.init_app(app)
    app.extensions["roomfit"] = Services(
        segmenter=SegmenterHolder(app.config["MODEL_DIR"], num_threads=app.config["MODEL_THREADS"],
                                  pool_size=app.config["MODEL_INTERPRETERS"],
                                  threshold=app.config["MASK_THRESHOLD"], min_area=app.config["MIN_PRODUCT_AREA"],
                                  refine_max_side=app.config["REFINE_MAX_SIDE"],
                                  retry_seconds=app.config["MODEL_RETRY_SECONDS"]),
        metrics=app_metrics,
        limiter=(TokenBucketLimiter(app.config["RATELIMIT_PER_SECOND"], app.config["RATELIMIT_BURST"])
                 if app.config["RATELIMIT_ENABLED"] else None),
        cache=CutoutCache(Path(app.config["CACHE_DIR"])),
        fetcher=SafeFetcher(_fetch_config(app)),
        intake_limiter=(TokenBucketLimiter(app.config["INTAKE_RATELIMIT_PER_MINUTE"] / 60,
                                           app.config["INTAKE_RATELIMIT_BURST"])
                        if app.config["RATELIMIT_ENABLED"] else None),
        gate=WorkGate(running=max(1, app.config["MODEL_INTERPRETERS"]), max_inflight=app.config["SHED_MAX_INFLIGHT"],
                      deadline=app.config["SHED_DEADLINE_SECONDS"], large_pixels=app.config["LARGE_IMAGE_PIXELS"],
                      large_slots=app.config["LARGE_IMAGE_SLOTS"], large_wait=app.config["LARGE_IMAGE_WAIT_SECONDS"],
                      on_shed=lambda reason: app_metrics.shed.labels(reason).inc()),
    )
    app.register_blueprint(api_bp)
    app.register_blueprint(intake.bp)
    app.register_blueprint(pages.bp)
    return app
