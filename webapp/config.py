"""Environment-driven configuration for the web app (every setting has an env variable of the same name)."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    """Read a yes/no environment variable."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_number(name: str, default: float, kind: type = int) -> float:
    """Read a numeric environment variable, failing loudly on garbage rather than silently using the default."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return kind(raw)
    except ValueError as exc:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"environment variable {name} must be {what}, got {raw!r}") from exc


def _env_path(name: str, default: Path) -> str:
    """Read a path environment variable; relative paths are taken from the project root."""
    raw = os.environ.get(name) or str(default)
    p = Path(raw)
    return str(p if p.is_absolute() else PROJECT_ROOT / p)


# Fields read specially (or never) from the environment, and fields that hold paths.
_NOT_FROM_ENV = {"SECRET_KEY", "DEBUG", "TESTING", "LOG_LEVEL", "FETCH_ALLOW_NETWORKS"}
_PATHS = {"DATABASE", "MODEL_DIR", "CACHE_DIR", "ROOMS_DIR", "SHOPPER_DATABASE", "SHOPPER_DIR"}


@dataclass
class Config:
    """All settings of the app. Field names are the Flask config keys and the environment variable names."""

    SECRET_KEY: str | None = None
    DEBUG: bool = False
    TESTING: bool = False
    LOG_LEVEL: str = "INFO"
    DATABASE: str = str(PROJECT_ROOT / "instance" / "roomfit.sqlite")
    MODEL_DIR: str = str(PROJECT_ROOT / "models")
    CACHE_DIR: str = str(PROJECT_ROOT / "instance" / "cache")
    ROOMS_DIR: str = str(PROJECT_ROOT / "data" / "demo" / "rooms")
    MAX_CONTENT_LENGTH: int = 10 * 1024 * 1024
    MAX_IMAGE_PIXELS: int = 40_000_000
    # Uploads above this many pixels are decoded reduced and answered (mask, cut-out) at this many pixels at most.
    MAX_OUTPUT_PIXELS: int = 12_000_000
    # Load shedding per worker (webapp/shedding.py, docs/reliability.md): at most SHED_MAX_INFLIGHT requests in
    # model work (MODEL_INTERPRETERS of them running), the rest answered 503 at once; an admitted request that cannot
    # start within SHED_DEADLINE_SECONDS of its arrival is dropped with a 503 before the model runs.
    SHED_MAX_INFLIGHT: int = 8
    SHED_DEADLINE_SECONDS: float = 0.5
    # Uploads above LARGE_IMAGE_PIXELS take one of LARGE_IMAGE_SLOTS per worker, waiting up to
    # LARGE_IMAGE_WAIT_SECONDS for it (their decode needs up to ~160 MB each).
    LARGE_IMAGE_PIXELS: int = 4_000_000
    LARGE_IMAGE_SLOTS: int = 1
    LARGE_IMAGE_WAIT_SECONDS: float = 15.0
    # Threads each TFLite interpreter may use; 1 keeps several request threads from fighting over 2 cores.
    MODEL_THREADS: int = 1
    # Interpreters per worker process (each holds its own copy of the unpacked weights).
    MODEL_INTERPRETERS: int = 2
    # How often (s) to retry loading a missing or broken model, so a model that lands later is picked up.
    MODEL_RETRY_SECONDS: float = 5.0
    MASK_THRESHOLD: float = 0.5
    # Fraction of the image below which the foreground is noise and the answer is "no product".
    MIN_PRODUCT_AREA: float = 0.005
    # Upper bound (px) on the long side of the photo that guides model.json's mask refinement, on top of the model's
    # own `refine.max_side` (250: ~2.5 ms a photo); its cost grows with the guide's pixels. Lower is cheaper with
    # coarser edges; 0 turns refinement off.
    REFINE_MAX_SIDE: int = 1024
    RATELIMIT_ENABLED: bool = True
    RATELIMIT_PER_SECOND: float = 10.0
    RATELIMIT_BURST: int = 30
    # Number of reverse proxies in front of the app whose X-Forwarded-For is trusted (0: use the socket address).
    PROXY_COUNT: int = 0
    PAGE_SIZE: int = 24
    # "Add your product": shoppers' own products live apart from the (read-only) catalogue, for INTAKE_TTL_HOURS.
    SHOPPER_DATABASE: str = str(PROJECT_ROOT / "instance" / "shopper.sqlite")
    SHOPPER_DIR: str = str(PROJECT_ROOT / "instance" / "shopper-pictures")
    INTAKE_TTL_HOURS: float = 72.0
    INTAKE_MAX_PICTURES: int = 8
    INTAKE_MIN_SIDE: int = 100
    INTAKE_RATELIMIT_PER_MINUTE: float = 12.0
    INTAKE_RATELIMIT_BURST: int = 4
    FETCH_TOTAL_TIMEOUT: float = 12.0
    FETCH_MAX_BYTES: int = 4 * 1024 * 1024
    # Test-only: networks the intake may fetch although they are not public (e.g. "127.0.0.1/32" for pages served
    # by the tests). Honoured only with TESTING; empty otherwise.
    FETCH_ALLOW_NETWORKS: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> "Config":
        """Build the configuration from environment variables, falling back to the defaults above: each field reads
        the variable of its own name, parsed by the field's type (paths in _PATHS, relative to the project)."""
        values = {}
        for f in fields(cls):
            default = getattr(cls, f.name)
            if f.name in _NOT_FROM_ENV:
                continue
            if f.name in _PATHS:
                values[f.name] = _env_path(f.name, Path(default))
            elif f.type == "bool":
                values[f.name] = _env_bool(f.name, default)
            elif f.type in ("int", "float"):
                values[f.name] = _env_number(f.name, default, int if f.type == "int" else float)
            elif f.type == "str":
                values[f.name] = os.environ.get(f.name, default)
        return cls(**values, SECRET_KEY=os.environ.get("SECRET_KEY") or None, DEBUG=_env_bool("FLASK_DEBUG", False),
                   LOG_LEVEL=os.environ.get("LOG_LEVEL", cls.LOG_LEVEL).upper())

    def as_mapping(self) -> dict:
        """The settings as a Flask config mapping."""
        return asdict(self)
