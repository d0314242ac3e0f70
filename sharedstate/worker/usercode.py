"""Importing the user's own code (``SHAREDSTATE_VERIFY_JOB``, ``SHAREDSTATE_CRON_CONFIG``).

The worker's processes start with ``python -P``, so the working directory never shadows a
``sharedstate`` module; the user's modules still import from it, as they would from
``python -m``: the working directory is put first on ``sys.path`` only once our own modules
are loaded. A submodule of an imported package is found through that package, so nothing
in the working directory can replace a ``sharedstate`` module after that.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
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


def _split(path: str) -> tuple[str, str]:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"job {path!r} is not 'package.module:function'")
    return module_name, attribute


def check_job(path: str, what: str) -> None:
    """ConfigurationError now if the job ``path`` names no module that can be found: a typo would
    otherwise only fail each run. Nothing of the user's runs here (not even a package's
    ``__init__``), and ``sys.path`` is left as it was: this process is the supervisor."""
    module_name, _ = _split(path)
    try:
        findable = _findable(module_name, [os.getcwd(), *sys.path])
    except (ImportError, ValueError, KeyError):  # a namespace package's parts: only refuse when sure
        findable = True
    if not findable:
        raise ConfigurationError(f"{what}: cannot import {module_name!r}: no module of that name")


def _findable(module_name: str, search: list[str]) -> bool:
    if module_name in sys.modules:
        return True
    name, *parts = module_name.split(".")
    spec = importlib.machinery.PathFinder.find_spec(name, search) or importlib.util.find_spec(name)
    for part in parts:  # each package's directory, without running its __init__
        if spec is None or spec.submodule_search_locations is None:
            return False
        name = f"{name}.{part}"
        spec = importlib.machinery.PathFinder.find_spec(name, list(spec.submodule_search_locations))
    return spec is not None


def load_callable(path: str) -> Callable[[], Any]:
    """Import ``package.module:function`` (the function may be a dotted attribute)."""
    module_name, attribute = _split(path)
    target: Any = import_user_module(module_name, f"job {path!r}")
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigurationError(f"{module_name!r} has no {attribute!r} (job {path!r})") from None
    if not callable(target):
        raise ConfigurationError(f"job {path!r} is not callable")
    return target  # type: ignore[no-any-return]
