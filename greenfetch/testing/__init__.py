"""The loopback test kit: real servers on 127.0.0.1 for tests, benchmarks and the demo.

Nothing here is used by the engine itself.
"""

from ._loopback import LoopbackServer
from ._moto import MotoServer, free_port

__all__ = ["LoopbackServer", "MotoServer", "free_port"]
