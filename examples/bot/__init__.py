"""A small bot in the style of the services sharedstate replaces the JSON files of.

State it shares with its cron/worker service (each a document):

* ``buildings``            registry: building id -> {"name", "floors", "added_at"}
* ``interest_pool``        registry: user id -> {"building", "since"}
* ``verification_tokens``  registry: token -> {"user", "expires_at", "verified"}
* ``contacted``            cluster -> set of user ids already contacted

Run the bot with ``python -m examples.bot`` and let the worker run its verification job
with ``SHAREDSTATE_VERIFY_JOB=examples.bot.jobs:periodic_verification``.
"""
