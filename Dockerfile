# syntax=docker/dockerfile:1
#
# The example app's image: flaskstack and the app in a virtual environment,
# served by gunicorn as an unprivileged user. docker-compose.yml runs it three
# ways: once as `flask db upgrade` (the migrate service), then with this CMD
# (web) and as `flask stack worker` (worker, the background jobs). Every
# setting comes from the environment; see .env.example.

ARG PYTHON_VERSION=3.13

# -- build: a virtual environment with flaskstack and gunicorn --------------
# Source, pip and build back-ends stay in this stage; only /opt/venv moves on.
FROM python:${PYTHON_VERSION}-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY flaskstack/ flaskstack/
RUN /opt/venv/bin/pip install ".[postgres,two-factor]" "gunicorn>=22"

# -- runtime: the interpreter, the environment and the app; no build tools --
FROM python:${PYTHON_VERSION}-slim AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLASK_APP=example:create_app \
    FLASKSTACK_PROFILE=production

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /app app

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY example/ example/
COPY migrations/ migrations/

USER app
EXPOSE 8000

# gunicorn with flaskstack's configuration (flaskstack/gunicorn.py): one sync
# worker per CPU (or WEB_CONCURRENCY), recycled every ~1000 requests, 25 s to
# finish requests on stop, and every log line, access lines included, one JSON
# object carrying the request id the app returns in X-Request-ID.
CMD ["gunicorn", "-c", "python:flaskstack.gunicorn", "--bind", "0.0.0.0:8000", "example:create_app()"]
