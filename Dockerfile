# One image for the worker, the API and the example bot; each service picks its command.
# The base image is pinned to a patch release and Debian release; pin its digest too
# (FROM python:3.11.14-slim-bookworm@sha256:...) where your registry policy asks for it.
FROM python:3.11.14-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SHAREDSTATE_DATA_DIR=/app/data

# tini as PID 1: it reaps zombies and forwards SIGTERM to the service (PID 1 gets no default
# signal handlers).
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# The dependency layer: rebuilt only when pyproject.toml changes, not on every code change.
COPY pyproject.toml ./
# with the [s3] extra: bucket backup targets (Railway's buckets) need it
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print('\n'.join(p['dependencies'] + p['optional-dependencies']['s3']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The code: one package, installed without touching the dependencies again.
COPY README.md ./
COPY sharedstate ./sharedstate
RUN pip install --no-deps . \
 && rm -rf build sharedstate \
 && useradd --uid 10001 --create-home app \
 && mkdir -p /app/data/snapshots \
 && chown -R app /app/data
# The example bot runs from /app (its jobs import from the working directory).
COPY examples ./examples

# Non-root. Railway mounts volumes owned by root: there set RAILWAY_RUN_UID=0 on the worker.
USER app
EXPOSE 8080

# For the API service; the worker and the bot disable it (compose) or have none (PaaS).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SHAREDSTATE_API_PORT', os.environ.get('PORT', '8080')), timeout=3)"

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["sharedstate", "api", "--host", "0.0.0.0"]
