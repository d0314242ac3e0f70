"""Railway infrastructure as code (railway-sdk): Redis with AOF, worker with the volume, API, bot.

    railway config plan --file railway/railway.py
    railway config apply --file railway/railway.py

Set the shared variable SHAREDSTATE_API_TOKENS (e.g. ``admin:<random token>``) first, and
SHAREDSTATE_GITHUB_REPO to your repository. setup.sh sets what the SDK does not cover,
including Redis's persistence settings.
"""

from __future__ import annotations

import os
from typing import Any

from railway_sdk import Project, define_railway, github, project, redis, service, volume

REPO = os.environ.get("SHAREDSTATE_GITHUB_REPO", "your-org/your-bot")
NAMESPACE = os.environ.get("SHAREDSTATE_NAMESPACE", "default")

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
    worker = service(
        "worker",
        source=source,
        start="sharedstate worker",
        env={
            **common,
            "SHAREDSTATE_VERIFY_JOB": "examples.bot.jobs:periodic_verification",
            "RAILWAY_RUN_UID": "0",  # the volume is mounted owned by root
            "RAILWAY_DEPLOYMENT_DRAINING_SECONDS": "30",  # time for the final snapshot
        },
        volumeMounts={"/app/data": volume("snapshots")},  # RAILWAY_VOLUME_MOUNT_PATH -> data dir
        deploy={"restartPolicyType": "ALWAYS"},  # a service with a volume has no replicas
    )
    tokens = ctx.shared.SHAREDSTATE_API_TOKENS if ctx is not None else "${{shared.SHAREDSTATE_API_TOKENS}}"
    api = service(
        "api",
        source=source,
        start="sharedstate api --host ::",  # IPv6-only private network on older environments
        healthcheck="/healthz",
        env={**common, "SHAREDSTATE_API_TOKENS": tokens},
        deploy={"restartPolicyType": "ON_FAILURE"},
    )
    bot = service(
        "bot",
        source=source,
        start="python -m examples.bot",
        env=common,
        deploy={"restartPolicyType": "ALWAYS"},
    )
    return project("sharedstate", resources=[store, worker, api, bot])
