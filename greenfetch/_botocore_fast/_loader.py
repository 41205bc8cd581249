"""botocore's model files read without an ``OrderedDict`` per JSON object (:func:`load_file`).

An inventory of every resource type makes clients of ~300 services, and each service's first client
loads its model files (``service-2``, ``endpoint-rule-set-1``, ``paginators-1``, some gzipped): about
1.3 s of CPU, 13% of a 4-region ``--types all`` run (docs/performance.md, "Breadth at scale").
botocore parses them with ``json.loads(payload, object_pairs_hook=OrderedDict)``: the hook is a Python
call per JSON object, and a ``dict`` keeps its keys in the order they were read since Python 3.7, so
the ``OrderedDict`` buys nothing botocore reads (it looks keys up and walks them in order). Without the
hook the parse takes 0.76 s where it took 1.29 s (300 services' three files, this machine).

What a reader of a loaded model sees: the same keys in the same order with the same values, in
``dict``s where botocore's own gave ``OrderedDict``s (equal to them; ``repr`` and
``OrderedDict``-only methods such as ``move_to_end`` differ). tests/test_model_loader.py holds the
installed botocore's model files to that, and a client made over them to botocore's request.
"""

from __future__ import annotations

import json
import os
from typing import Any

import botocore.loaders

_Loader = botocore.loaders.JSONFileLoader
_load_file = _Loader._load_file
_logger = botocore.loaders.logger


def load_file(self: Any, full_path: str, open_method: Any) -> Any:
    """``JSONFileLoader._load_file``: None for a missing file, else the file's JSON as ``dict``s."""
    if not os.path.isfile(full_path):
        return None
    # UTF-8 whatever the locale, as botocore reads it
    with open_method(full_path, "rb") as fp:
        payload = fp.read().decode("utf-8")
    _logger.debug("Loading JSON file: %s", full_path)
    return json.loads(payload)
