"""The operator API: a FastAPI service over the shared store (see docs/api.md)."""
