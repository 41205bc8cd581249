"""SIGINT, SIGTERM and SIGHUP all stop a run the same way: the main greenlet gets an exception,
the command writes what completed (a valid JSON array for ``-o json``), flushes sinks and metrics,
and exits 128 + the signal number: 130 (Ctrl-C), 143 (SIGTERM: systemd, Kubernetes, CI, ``docker
stop``), 129 (SIGHUP: the terminal went away). A second signal of any of them exits at once.

Why the main greenlet: under gevent a signal lands in whichever greenlet runs at that moment, which
prints a traceback and leaves the main greenlet to find out later.
"""

from __future__ import annotations

import signal
from typing import Any

__all__ = ["SIGNALS", "Terminated", "exit_code", "received", "route_to_main"]

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


_received: list[int] = []


def received() -> int | None:
    """The stop signal this process got, if any (so every command exits with the same code)."""
    return _received[0] if _received else None


class Terminated(KeyboardInterrupt):
    """A stop signal, raised in the main greenlet; a KeyboardInterrupt so every ``except
    KeyboardInterrupt`` that already cleans up for Ctrl-C does the same for SIGTERM and SIGHUP."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_code(exc: BaseException | None = None) -> int:
    """128 + the signal number (the shell's convention); 130 for a plain KeyboardInterrupt."""
    return 128 + int(getattr(exc, "signum", signal.SIGINT))


def route_to_main() -> None:
    """Install the handlers (call once, in the main thread, before the command runs)."""
    from .. import _patch

    if _patch.is_patched():
        _route_gevent()
    else:
        for signum in SIGNALS:
            signal.signal(signum, _raise_once)


def _raise_once(signum: int, _frame: Any) -> None:
    _received.append(signum)
    _restore_defaults()
    raise Terminated(signum)


def _restore_defaults() -> None:
    """The next signal gets the default: Ctrl-C raises KeyboardInterrupt, TERM and HUP end the process."""
    for signum in SIGNALS:
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)


def _route_gevent() -> None:
    import gevent
    import greenlet

    main_greenlet = greenlet.getcurrent()
    hub = gevent.get_hub()
    watchers: list[Any] = []

    def deliver(signum: int) -> None:
        _received.append(signum)
        for watcher in watchers:
            watcher.cancel()
        _restore_defaults()
        hub.loop.run_callback(main_greenlet.throw, Terminated(signum))

    watchers.extend(gevent.signal_handler(signum, deliver, signum) for signum in SIGNALS)
