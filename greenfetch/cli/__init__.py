"""The ``greenfetch`` command: a thin click group over the Python API.

Each command lives in its own module and registers itself on ``main``; the group builds the one
Config (flag > environment > default) and the Engine into ``ctx.obj``.
"""

from __future__ import annotations

from ._app import load_commands, main, run

__all__ = ["load_commands", "main", "run"]
