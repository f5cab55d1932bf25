"""gunicorn settings for the RoomFit web app (`gunicorn -c gunicorn.conf.py "webapp:create_app()"`).

Everything can be overridden from the environment: WEB_CONCURRENCY (workers), GUNICORN_THREADS, GUNICORN_BIND /
HOST+PORT, GUNICORN_TIMEOUT, GUNICORN_KEEPALIVE, LOG_LEVEL; the worker (webapp/server.py) reads REQUEST_READ_TIMEOUT
(seconds a client has to send its whole request, default 10) and MAX_CONTENT_LENGTH.
"""
import os
import shutil
import tempfile

bind = os.environ.get("GUNICORN_BIND") or f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# One process per core (inference is CPU-bound). The worker is gthread that buffers each whole request in its event
# loop before a thread sees it (webapp/server.py), so slow clients hold no thread; model work per worker is bounded
# by the app's load shedding (SHED_MAX_INFLIGHT, webapp/shedding.py). The threads beyond that answer cheap requests
# (/healthz, refusals) while the model is busy.
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
worker_class = "webapp.server.RoomfitWorker"
# Import the app once in the master, then fork: faster start, shared pages. The TFLite interpreter is built
# lazily in each worker thread after the fork, never in the master.
preload_app = True
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
limit_request_line = 4094
accesslog = "-"  # stdout
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Prometheus metrics summed over all workers: each worker writes its values to files in this folder.
_prom_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_own_prom_dir = not _prom_dir
if _own_prom_dir:
    _prom_dir = tempfile.mkdtemp(prefix="roomfit-prom-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _prom_dir
os.makedirs(_prom_dir, exist_ok=True)


def on_starting(server):
    """Start from an empty metrics folder (stale files from an old run would be summed in)."""
    for entry in os.listdir(_prom_dir):
        path = os.path.join(_prom_dir, entry)
        if os.path.isfile(path):
            os.unlink(path)


def post_fork(server, worker):
    """Load the model in each worker right away, so /readyz is green within a moment of the start; make malloc give
    large blocks back to the system when freed (webapp/memory.py)."""
    from webapp.memory import tune_malloc

    tune_malloc()
    app = worker.app.wsgi()
    app.extensions["roomfit"].segmenter.get()


def child_exit(server, worker):
    """Drop a dead worker's live gauges from the metrics."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics folder if this config created it."""
    if _own_prom_dir:
        shutil.rmtree(_prom_dir, ignore_errors=True)
