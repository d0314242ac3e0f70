"""The ``sharedstate`` command."""

from sharedstate.cli.main import main

__all__ = ["main"]
