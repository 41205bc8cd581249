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
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from moto import backends
from moto.server import main

_MODULES = tuple(backends.list_of_moto_modules())  # the installed package's directories: fixed while it runs
backends.list_of_moto_modules = lambda: _MODULES
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request access line (errors still go out)


# moto's SSM loads its public parameters (27,000 under global-infrastructure/services) into a backend on
# the first request that reads them, and sets the flag that says so only after the load: every request
# that arrives meanwhile (werkzeug runs each in a thread of its own) loads them again and appends each
# parameter once more. An inventory's region filter asks for two dozen services at once: in
# test_catalog_moto.py 26 loads, 10 s of the server's CPU. One load at a time makes it one load.
# Patched when moto imports its SSM models (importing them here would cost every server 1.2 s of CPU).
_LOADING = threading.Lock()


def _load_once(models: ModuleType) -> None:
    check = models.ParameterDict._check_loading_status

    def check_loading_status(self: Any, key: str) -> None:
        with _LOADING:
            check(self, key)

    models.ParameterDict._check_loading_status = check_loading_status


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
            _load_once(module)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


sys.meta_path.insert(0, _SSMModels())

if __name__ == "__main__":
    main(sys.argv[1:])
