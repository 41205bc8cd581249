"""Entry point nu runs: ``nu_plugin_greenfetch --stdio`` (the console script)."""

import greenfetch  # noqa: I001,F401  (first: gevent patches before anything else)

import os
import sys

from gevent.fileobject import FileObjectPosix

from greenfetch._config import raise_open_file_limit

from ._codec import PROTOCOL_VERSION
from ._commands import handle
from ._server import Server
from ._signatures import signatures

__all__ = ["main"]

_USAGE = """\
nu_plugin_greenfetch is a Nushell plugin (it speaks nu {version}'s plugin protocol on stdio).
Register it from Nushell:

    plugin add (which nu_plugin_greenfetch | get path.0)
    plugin use greenfetch
    batch-requests [{{service: sts, operation: GetCallerIdentity}}]
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args != ["--stdio"]:
        print(_USAGE.format(version=PROTOCOL_VERSION), file=sys.stderr)
        return 0 if args in (["--help"], ["-h"]) else 2
    # As the CLI does at start (one function for both): the plugin lives as long as nu keeps it, and
    # its batches keep a socket per call in flight; the soft default (often 1024) is hit first.
    raise_open_file_limit()
    # The protocol gets a private copy of stdout; fd 1 then points at stderr, so a library that
    # prints can never corrupt the protocol stream (nu would drop the plugin).
    protocol_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    server = Server(
        FileObjectPosix(0, "rb", close=False),
        FileObjectPosix(protocol_fd, "wb"),
        handle,
        signatures(),
        {"version": greenfetch.__version__},
        version=os.environ.get("GREENFETCH_NU_PROTOCOL_VERSION") or PROTOCOL_VERSION,
        debug=os.environ.get("GREENFETCH_NU_DEBUG", "") not in ("", "0"),
    )
    return server.serve()


if __name__ == "__main__":
    sys.exit(main())
