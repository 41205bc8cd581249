"""The test kit: real servers on 127.0.0.1 for tests, benchmarks and the demo (redis-server and
``greenfetch worker`` processes among them), and ``MockCaller`` for the engine's own rules with no
network.

Nothing here is used by the engine itself.
"""

from ._inventory_pages import inventory_server
from ._loopback import LoopbackServer
from ._loopback_any import any_server
from ._mock import MockCaller, client_error
from ._moto import MotoServer, free_port
from ._postgres import PostgresServer, postgres_bindir
from ._scaleout import RedisServer, start_worker, stop_processes
from ._scripted import Reply, ScriptedServer, Seen, http_response
from ._tls import ThrowawayCA, throwaway_ca
from ._wait import wait_until

__all__ = [
    "LoopbackServer",
    "MockCaller",
    "MotoServer",
    "PostgresServer",
    "RedisServer",
    "Reply",
    "ScriptedServer",
    "Seen",
    "ThrowawayCA",
    "any_server",
    "client_error",
    "free_port",
    "http_response",
    "inventory_server",
    "postgres_bindir",
    "start_worker",
    "stop_processes",
    "throwaway_ca",
    "wait_until",
]
