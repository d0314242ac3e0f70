"""Railway infrastructure as code (railway-sdk): Redis with AOF, a bucket for backups, worker, API, bot.

    railway config plan --file railway/railway.py
    railway config apply --file railway/railway.py

Set the shared variable SHAREDSTATE_API_TOKENS (e.g. ``admin:<random token>``) first, and
SHAREDSTATE_GITHUB_REPO to your repository. setup.sh sets what the SDK does not cover,
including Redis's persistence settings.

Backups (snapshots and the continuous journal) go to a Railway Bucket that the worker and the
API both reach, so the worker needs no volume (the Free plan's one volume is Redis's). Set
SHAREDSTATE_RAILWAY_BACKUPS=volume to keep them on a volume of the worker instead.
"""

from __future__ import annotations

import os
from typing import Any

from railway_sdk import Project, bucket, define_railway, github, project, redis, service, volume

REPO = os.environ.get("SHAREDSTATE_GITHUB_REPO", "your-org/your-bot")
NAMESPACE = os.environ.get("SHAREDSTATE_NAMESPACE", "default")
BACKUPS = os.environ.get("SHAREDSTATE_RAILWAY_BACKUPS", "bucket")  # or "volume"
AWS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_S3", "AWS_REGION")

# Redis runs Railway's own image as deployed: no start command of ours (it need not have the
# official image's entrypoint or data path). AOF and noeviction are set on the running
# server (setup.sh, CONFIG SET) and checked by `sharedstate doctor` and /v1/health.


@define_railway
def main(ctx: Any = None) -> Project:
    store = redis("Redis")
    common = {
        "REDIS_URL": store.env.REDIS_URL,  # private URL: ${{Redis.REDIS_URL}}
        "SHAREDSTATE_NAMESPACE": NAMESPACE,
    }
    source = github(REPO)
    backups = bucket("backups") if BACKUPS == "bucket" else None
    storage: dict[str, Any] = {}
    if backups is not None:  # the bucket's variables, as its AWS SDK preset names them
        storage = {name: getattr(backups.env, name) for name in AWS}
        storage["SHAREDSTATE_BACKUP_URL"] = "s3://${{backups.AWS_S3_BUCKET_NAME}}/" + NAMESPACE
    mounts = {} if backups is not None else {"volumeMounts": {"/app/data": volume("snapshots")}}
    worker = service(
        "worker",
        source=source,
        start="sharedstate worker",
        env={
            **common,
            **storage,
            "SHAREDSTATE_VERIFY_JOB": "examples.bot.jobs:periodic_verification",
            "RAILWAY_RUN_UID": "0",  # a volume is mounted owned by root
            "RAILWAY_DEPLOYMENT_DRAINING_SECONDS": "30",  # time for the final snapshot
        },
        **mounts,  # a volume: RAILWAY_VOLUME_MOUNT_PATH -> data dir
        deploy={"restartPolicyType": "ALWAYS"},  # one worker journals: no replicas
    )
    tokens = ctx.shared.SHAREDSTATE_API_TOKENS if ctx is not None else "${{shared.SHAREDSTATE_API_TOKENS}}"
    api = service(
        "api",
        source=source,
        start="sharedstate api --host ::",  # IPv6-only private network on older environments
        healthcheck="/healthz",
        env={**common, **storage, "SHAREDSTATE_API_TOKENS": tokens},
        deploy={"restartPolicyType": "ON_FAILURE"},
    )
    bot = service(
        "bot",
        source=source,
        start="python -m examples.bot",
        env=common,
        deploy={"restartPolicyType": "ALWAYS"},
    )
    resources = [store, worker, api, bot] + ([backups] if backups is not None else [])
    return project("sharedstate", resources=resources)
