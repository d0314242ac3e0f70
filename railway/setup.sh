#!/usr/bin/env bash
# What railway.py cannot set (or what an environment created by hand needs), with the
# documented, non-deprecated command: railway environment edit --service-config.
# Run from a linked project: railway link, then bash railway/setup.sh
set -euo pipefail

edit() { railway environment edit --service-config "$@"; }

# Redis: AOF every second and no eviction (Railway's template has AOF off). Told to the
# running server, whatever its image's entrypoint; `sharedstate doctor` checks the result.
redis_url="$(railway variables --service Redis --kv | grep '^REDIS_PUBLIC_URL=' | cut -d= -f2-)"
for setting in "appendonly yes" "appendfsync everysec" "maxmemory-policy noeviction"; do
  # shellcheck disable=SC2086 # the setting is two words on purpose
  redis-cli -u "$redis_url" CONFIG SET $setting
done
redis-cli -u "$redis_url" CONFIG REWRITE \
  || echo "Redis has no config file to keep these in: run this script again after Redis restarts (sharedstate doctor warns)"

# worker: the service with the volume; restart always; time for its final snapshot.
edit worker deploy.startCommand "sharedstate worker"
edit worker deploy.restartPolicyType ALWAYS
railway variables --service worker --set "RAILWAY_DEPLOYMENT_DRAINING_SECONDS=30" --set "RAILWAY_RUN_UID=0"

# api: health check for deploys; bind :: for the private network.
edit api deploy.startCommand "sharedstate api --host ::"
edit api deploy.healthcheckPath /healthz
edit api deploy.restartPolicyType ON_FAILURE

# bot: the example bot (replace with your own bot's start command).
edit bot deploy.startCommand "python -m examples.bot"
edit bot deploy.restartPolicyType ALWAYS

echo "done: check with 'railway environment' and redeploy the services"
