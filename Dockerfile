# One image for the worker, the API and the example bot; each service picks its command.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SHAREDSTATE_DATA_DIR=/app/data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY sharedstate ./sharedstate
COPY worker ./worker
COPY api ./api
COPY examples ./examples
RUN pip install . \
 && useradd --uid 10001 --create-home app \
 && mkdir -p /app/data/snapshots \
 && chown -R app /app/data

# Non-root. Railway mounts volumes owned by root: there set RAILWAY_RUN_UID=0 on the worker.
USER app
EXPOSE 8080

# For the API service; the worker and the bot disable it (compose) or have none (PaaS).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SHAREDSTATE_API_PORT', os.environ.get('PORT', '8080')), timeout=3)"

CMD ["sharedstate", "api", "--host", "0.0.0.0"]
