"""The seam below botocore: the HTTP session every client the engine creates sends through.

botocore has no public hook for this; the one place is ``client._endpoint.http_session``, replaced
right after the client is created (see docs/architecture.md, "the two seams"). Everything that
decides which session a client gets lives here, so a faster session changes this module only.
"""

from __future__ import annotations

from typing import Any

from ._config import Config

__all__ = ["install_http_session"]


def install_http_session(client: Any, config: Config) -> None:
    """Give ``client`` the HTTP session greenfetch wants for it.

    Today that is botocore's own URLLib3Session, which the client already has: this is the place
    where a different session is installed, and the only one."""
    del client, config
