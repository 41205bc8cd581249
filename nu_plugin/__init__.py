"""nu_plugin_greenfetch: greenfetch's commands in Nushell, over Nushell's plugin protocol (JSON on stdio).

greenfetch is imported first so gevent patches the standard library before anything imports ssl.
The plugin always runs on gevent: its stdio loop is greenlets (see _server).
"""

import os

if os.environ.get("GREENFETCH_ENGINE", "gevent").strip().lower() != "gevent":
    import sys

    print(
        "nu_plugin_greenfetch: GREENFETCH_ENGINE is ignored here; the plugin always runs on gevent",
        file=sys.stderr,
    )
    os.environ["GREENFETCH_ENGINE"] = "gevent"

import greenfetch  # noqa: E402,F401  (first: gevent must patch before ssl/botocore load)
