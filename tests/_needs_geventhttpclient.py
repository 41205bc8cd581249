"""Imported first by a test module that is the gevent session's alone (it imports geventhttpclient):
the module is skipped, said in pytest's summary, where greenfetch does not install geventhttpclient
(``_by_python``: Python 3.10)."""

import pytest
from _by_python import GEVENTHTTPCLIENT, WITHOUT

if not GEVENTHTTPCLIENT:
    pytest.skip(WITHOUT, allow_module_level=True)
