"""moto's server as ``python -m moto.server -H HOST -p PORT`` runs it, less two costs per request that say
nothing about AWS: moto finds the backend for each request by listing its own package directory (about
150 ``stat`` calls, every request), and werkzeug formats a log line for each request into a stderr nobody
reads. Together about a quarter of the server's CPU on a small request (3.7 -> 2.7 ms for SQS
ListQueues), which the tests' lanes pay thousands of times.

Run as a script (``python _moto_child.py -H HOST -p PORT``, as ``MotoServer`` does), so the child imports
moto and not greenfetch (whose import patches gevent).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from types import ModuleType
from typing import Any

from moto import backends
from moto.server import main

_MODULES = tuple(backends.list_of_moto_modules())  # the installed package's directories: fixed while it runs
backends.list_of_moto_modules = lambda: _MODULES
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request access line (errors still go out)


# Two costs of moto's SSM, patched when moto imports its SSM models (importing them here would cost every
# server 1.2 s of CPU), neither changing what it answers:
# - it loads its public parameters (27,000 under global-infrastructure/services) into a backend on the
#   first request that reads them, and sets the flag that says so only after the load: every request that
#   arrives meanwhile (werkzeug runs each in a thread of its own) loads them again and appends each
#   parameter once more. An inventory's region filter asks for two dozen services at once: in
#   test_catalog_moto.py 26 loads, 10 s of the server's CPU. One load at a time makes it one load.
# - GetParametersByPath scans all 27,000 names for each page of 10, and the region filter reads 3-4 pages
#   a service. The names under a path are kept, in moto's order, until a name is added or deleted: 30
#   services' lists (~120 pages) 0.92 -> 0.51 s of the server's CPU.
_LOADING = threading.RLock()  # the scan checks the loading again, under it
_UNDER = "_greenfetch_names_under"  # (path, recursive) -> names, on each ParameterDict


def _patch_ssm(models: ModuleType) -> None:
    parameters = models.ParameterDict
    check, scan = parameters._check_loading_status, parameters.get_keys_beginning_with

    def check_loading_status(self: Any, key: str) -> None:
        with _LOADING:
            check(self, key)

    def names_under(self: Any, path: str, recursive: bool) -> Iterator[str]:
        self._check_loading_status(path)  # a load adds names: before the lookup
        with _LOADING:
            kept = self.__dict__.setdefault(_UNDER, {})
            if (path, recursive) not in kept:
                kept[(path, recursive)] = list(scan(self, path, recursive))
            return iter(kept[(path, recursive)])

    def changing(method: Callable[..., Any]) -> Callable[..., Any]:
        def change(self: Any, *args: Any, **kwargs: Any) -> Any:
            self.__dict__.pop(_UNDER, None)
            return method(self, *args, **kwargs)

        return change

    parameters._check_loading_status = check_loading_status
    parameters.get_keys_beginning_with = names_under
    # every way a name comes or goes (a missing name's list is stored through __setitem__)
    for name in ("__setitem__", "__delitem__", "pop", "popitem", "clear", "update", "setdefault"):
        setattr(parameters, name, changing(getattr(dict, name)))


class _SSMModels(importlib.abc.MetaPathFinder):
    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "moto.ssm.models":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            _patch_ssm(module)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


sys.meta_path.insert(0, _SSMModels())

if __name__ == "__main__":
    main(sys.argv[1:])
