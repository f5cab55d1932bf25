# RoomFit serving image: gunicorn + Flask + the fp16 TFLite model on ai-edge-litert (no TensorFlow).
# Builds on the official python:3.11-slim and on a bare Debian bookworm with python3 + python3-venv (what
# `make container-test` builds offline with debootstrap), so everything goes through `python3 -m venv`.
ARG BASE_IMAGE=python:3.11-slim

# ---------- build: virtualenv, app, model and the demo catalogue database ----------
FROM ${BASE_IMAGE} AS build
# Where the model comes from inside the build context: models/ (model.json + *.tflite; .dockerignore keeps the .h5
# and the training leftovers out). The container test points it at a stand-in while models/ is still empty.
ARG MODEL_SRC=models
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY requirements.txt requirements-core.txt ./
# An optional build secret `ca` (a CA bundle) lets pip through a TLS-intercepting proxy without baking the
# bundle into a layer. The pruned parts are never imported when serving on CPU: numpy's test suite, pip itself,
# and ai-edge-litert's NPU vendor plugins, AOT compiler, tools and WebGPU accelerator (~50 MB together).
RUN --mount=type=secret,id=ca,required=false \
    python3 -m venv /opt/venv \
    && if [ -s /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt \
    && /opt/venv/bin/pip uninstall --yes --quiet pip \
    && site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
    && rm -rf "$site"/numpy/*/tests "$site"/numpy/tests "$site"/setuptools "$site"/_distutils_hack \
              "$site"/ai_edge_litert/vendors "$site"/ai_edge_litert/aot "$site"/ai_edge_litert/tools \
              "$site"/ai_edge_litert/libLiteRtWebGpuAccelerator.so \
    && find /opt/venv -name __pycache__ -type d -prune -exec rm -rf {} + \
    && /opt/venv/bin/python -m compileall -q -j 0 "$site" > /dev/null
COPY gunicorn.conf.py ./
COPY core/ core/
COPY webapp/ webapp/
COPY data/demo/ data/demo/
COPY ${MODEL_SRC}/ models/
# The catalogue is baked in: the container's root filesystem is read-only at run time. Everything is made
# world-readable because files keep their build-context modes (an export written 0600 would be unreadable to uid
# 10001), and stays root-owned so the app cannot change itself.
RUN /opt/venv/bin/python -m compileall -q core webapp gunicorn.conf.py \
    && DATABASE=/app/instance/roomfit.sqlite /opt/venv/bin/flask --app webapp init-db \
    && DATABASE=/app/instance/roomfit.sqlite /opt/venv/bin/flask --app webapp import-catalogue data/demo/catalogue.jsonl \
    && test -f models/model.json \
    && chmod -R a+rX /app /opt/venv

# ---------- runtime ----------
FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="roomfit" \
      org.opencontainers.image.description="RoomFit: furniture cut-outs and the /predict API (gunicorn, TFLite)"
# A fixed uid/gid without a login shell or home; the app files stay root-owned, so the app cannot rewrite itself.
RUN groupadd --system --gid 10001 roomfit \
    && useradd --system --no-log-init --uid 10001 --gid roomfit --home-dir /nonexistent --no-create-home \
       --shell /usr/sbin/nologin roomfit
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATABASE=/app/instance/roomfit.sqlite \
    MODEL_DIR=/app/models \
    CACHE_DIR=/tmp/roomfit-cache \
    SHOPPER_DATABASE=/tmp/roomfit-shopper/shopper.sqlite \
    SHOPPER_DIR=/tmp/roomfit-shopper/pictures
# /tmp is the only writable place (gunicorn heartbeats, Prometheus files, the cut-out cache); declaring it a volume
# makes ECS Fargate give the task's bind mount this directory's 1777 mode, so the non-root user can write there.
VOLUME ["/tmp"]
USER 10001:10001
EXPOSE 8000
# The image ships no HTTP client, hence urllib; PORT is read as gunicorn.conf.py's bind reads it (default 8000).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; url = 'http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz'; sys.exit(0 if urllib.request.urlopen(url, timeout=3).status == 200 else 1)"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "webapp:create_app()"]
