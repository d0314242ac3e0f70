"""Adapters for bot frameworks (each needs its framework installed: ``sharedstate[telegram]``)."""
