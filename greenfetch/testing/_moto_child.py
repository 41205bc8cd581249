"""moto's server as ``python -m moto.server -H HOST -p PORT`` runs it, less two costs per request that say
nothing about AWS: moto finds the backend for each request by listing its own package directory (about
150 ``stat`` calls, every request), and werkzeug formats a log line for each request into a stderr nobody
reads. Together about a quarter of the server's CPU on a small request (3.7 -> 2.7 ms for SQS
ListQueues), which the tests' lanes pay thousands of times.

Run as a script (``python _moto_child.py -H HOST -p PORT``, as ``MotoServer`` does), so the child imports
moto and not greenfetch (whose import patches gevent).
"""

from __future__ import annotations

import logging
import sys

from moto import backends
from moto.server import main

_MODULES = tuple(backends.list_of_moto_modules())  # the installed package's directories: fixed while it runs
backends.list_of_moto_modules = lambda: _MODULES
logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request access line (errors still go out)

if __name__ == "__main__":
    main(sys.argv[1:])
