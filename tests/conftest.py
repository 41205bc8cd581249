"""Shared fixtures. greenfetch is imported first so gevent patches before anything imports ssl."""
# ruff: noqa: I001

import greenfetch  # noqa: F401  (must come first: see greenfetch/_patch.py)

import gc
import os
import resource
import time

import pytest

from greenfetch.testing import LoopbackServer, MotoServer, PostgresServer, postgres_bindir, wait_until
from greenfetch.testing._loopback_faults import DEFAULT_KNOBS

_AWS_VARS = [k for k in os.environ if k.startswith(("AWS_", "GREENFETCH_"))]

# The test process builds hundreds of engines, each loading botocore's models (EC2's alone is ~30,000
# objects), so the collector's default first threshold (700 allocations) runs a full collection of a
# heap of a million objects every few seconds: a third of a lane's CPU, in pauses of up to 5 s in
# whatever test is running. A first threshold of 10,000 made full collections about ten times rarer
# (measured on ten lane-B modules: 19.5 -> 5 s of CPU in full collections, 59 -> 49 s of CPU in all);
# (100,000, 20, 10) makes them rarer again: on ten other lane-B modules (226 tests) 9 -> 4 full
# collections, the collector's CPU 16-19 s -> 11 s, peak memory 0.8-0.9 GB -> 0.9-1.3 GB. Only this
# process changes: the commands the tests start keep Python's.
gc.set_threshold(100_000, 20, 10)


@pytest.fixture(autouse=True, scope="session")
def clean_environ(tmp_path_factory):
    """No test ever sees real credentials, a real profile or the user's ~/.aws, nor writes the user's
    inventory cache (every fresh page is cached, whatever the TTL: the session gets its own directory).

    Session-scoped: module-scoped engines create clients (and resolve credentials) before any
    function-scoped fixture would run.
    """
    patch = pytest.MonkeyPatch()
    for name in _AWS_VARS:
        patch.delenv(name, raising=False)
    home = tmp_path_factory.mktemp("aws-home")
    patch.setenv("AWS_CONFIG_FILE", str(home / "config"))
    patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials"))
    patch.setenv("AWS_ACCESS_KEY_ID", "testing")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    patch.setenv("GREENFETCH_CACHE_DIR", str(tmp_path_factory.mktemp("greenfetch-cache")))
    yield
    patch.undo()


# moto builds its 1,301 public AMIs (each with a volume and a snapshot) in every account and region whose
# EC2 is first touched: ~70 ms of the server's CPU each time, and every DescribeSnapshots lists them all.
# No test of the session's server needs them (moto runs an instance from any ami- id it does not know);
# test_catalog_moto.py's trap test has a server of its own that loads them.
SESSION_MOTO = {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}


@pytest.fixture(scope="module")
def cas(tmp_path_factory):
    """Two throwaway certificate authorities: the server's and another (a wrong CA for the client)."""
    from greenfetch.testing import throwaway_ca

    root = tmp_path_factory.mktemp("tls")
    return throwaway_ca(root / "ca"), throwaway_ca(root / "other")


@pytest.fixture
def fast_installed():
    """greenfetch's botocore adaptations installed for the test (and put back as they were)."""
    from greenfetch import _botocore_fast

    was = _botocore_fast.installed()
    assert _botocore_fast.install()
    yield
    if not was:
        _botocore_fast.uninstall()


@pytest.fixture(scope="session")
def moto_server():
    """moto's server over real HTTP for the whole session: use ``moto.url``; reset via ``moto.reset()``.
    Without moto's public AMIs (``SESSION_MOTO``)."""
    server = MotoServer(settings=SESSION_MOTO)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL cluster for the whole session (``PostgresServer``: initdb in a temporary
    directory, a free loopback port); a test takes a database of its own with ``create_database``."""
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL is not installed; scripts/install-postgres installs Debian's postgresql")
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


# What ``loopback`` resets the session's server to: the server's own defaults, except no latency.
LOOPBACK_DEFAULTS = {**DEFAULT_KNOBS, "latency": 0.0}


@pytest.fixture(scope="session")
def loopback_server():
    """One loopback server (DynamoDB JSON, no handler, plain HTTP) for the whole pytest process, as
    httpx's tests share one ``server``. Tests take it through ``loopback``, which resets it first; a
    module-scoped fixture that needs only its URL (to build an engine) may take this one. Keep a
    private ``LoopbackServer`` for a handler, TLS or a child environment."""
    with (server := LoopbackServer(**LOOPBACK_DEFAULTS)):
        yield server


@pytest.fixture
def loopback(loopback_server):
    """The session's loopback server as if just started: nothing of an earlier test in flight, every
    knob at ``LOOPBACK_DEFAULTS``, the counters zeroed. Set knobs with ``loopback.control(...)``."""
    wait_until(
        lambda: loopback_server.stats()["inflight"] <= 0,
        30,
        "an earlier test's requests to end on the session loopback server",
    )
    loopback_server.control(**LOOPBACK_DEFAULTS)
    loopback_server.reset_stats()
    return loopback_server


# -- where a run's time goes, per module (scripts/_lanes.py balances its lanes on these) -----------------
#
# A module's CPU is this process's, that of the children it has reaped, and that of the descendants still
# running (read from /proc), taken when the module's first test starts and when its last one ends. Without
# the last, a session's servers (the loopback and moto servers every module of a lane shares) were counted
# only when reaped, at the session's end: all of their CPU went to the lane's last module (33 s to
# test_inventory_loopback.py, which costs 3 s alone).

_MODULE_TIME: dict[str, list[float]] = {}
_MODULE_START: list[float] = []  # wall, CPU at the current module's first test


def _cpu_seconds() -> float:
    """CPU seconds of this process, of the children it has reaped, and of its live descendants (each
    with the children it has reaped): the servers, workers and CLIs its tests started."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime + _live_descendants_cpu()


def _live_descendants_cpu() -> float:
    """utime + stime + cutime + cstime of every live descendant (/proc/PID/stat; 0 where there is none)."""
    parent_of: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        pid = int(entry.name)
        parent_of[pid] = int(fields[1])
        ticks[pid] = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    children: dict[int, list[int]] = {}
    for pid, parent in parent_of.items():
        children.setdefault(parent, []).append(pid)
    total, todo = 0, list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        total += ticks[pid]
        todo.extend(children.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    module = item.nodeid.split("::", 1)[0]
    if module not in _MODULE_TIME:  # its first test
        _MODULE_TIME[module] = [0.0, 0.0]
        _MODULE_START[:] = [time.monotonic(), _cpu_seconds()]
    yield
    if nextitem is None or nextitem.nodeid.split("::", 1)[0] != module:  # its last test
        wall, cpu = _MODULE_START
        spent = _MODULE_TIME[module]
        spent[0] += time.monotonic() - wall
        spent[1] += _cpu_seconds() - cpu


def pytest_terminal_summary(terminalreporter):
    if len(_MODULE_TIME) < 2:
        return
    terminalreporter.write_sep("=", "slowest modules (wall, CPU with the processes it started; 1 s or more)")
    for module, (wall, cpu) in sorted(_MODULE_TIME.items(), key=lambda kv: -kv[1][0]):
        if max(wall, cpu) >= 1.0:
            terminalreporter.write_line(f"{wall:7.1f}s {cpu:7.1f}s  {module}")
