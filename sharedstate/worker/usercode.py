"""Importing the user's own code (``SHAREDSTATE_VERIFY_JOB``, ``SHAREDSTATE_CRON_CONFIG``).

The worker's processes start with ``python -P``, so the working directory never shadows a
``sharedstate`` module; the user's modules still import from it, as they would from
``python -m``: the working directory is put first on ``sys.path`` only once our own modules
are loaded. A submodule of an imported package is found through that package, so nothing
in the working directory can replace a ``sharedstate`` module after that.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

from sharedstate.errors import ConfigurationError


def import_user_module(module_name: str, what: str) -> ModuleType:
    """Import the user's module ``module_name`` (working directory first); ``what`` names it in errors."""
    here = os.getcwd()
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"{what}: cannot import {module_name!r}: {exc}") from exc


def load_callable(path: str) -> Callable[[], Any]:
    """Import ``package.module:function`` (the function may be a dotted attribute)."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"job {path!r} is not 'package.module:function'")
    target: Any = import_user_module(module_name, f"job {path!r}")
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigurationError(f"{module_name!r} has no {attribute!r} (job {path!r})") from None
    if not callable(target):
        raise ConfigurationError(f"job {path!r} is not callable")
    return target  # type: ignore[no-any-return]
