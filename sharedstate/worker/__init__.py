"""The worker service: RQ workers, RQ cron, snapshots (see docs/worker.md)."""
