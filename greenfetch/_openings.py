"""What one ``_adaptive.Limits`` shares with all its limiters (``_limiter.Limiter``): the slots held in
every scope (``Held``), and what the runs told them (``Openings``: a run's settings, a reset), which each
limiter applies when it is next used or read."""

from __future__ import annotations

from ._controller import Settings

__all__ = ["Held", "Openings"]


class Held:
    """The slots held in every scope of one ``Limits``: one count, changed under its limiters' lock."""

    __slots__ = ("slots",)

    def __init__(self) -> None:
        self.slots = 0


class Openings:
    """What the runs of one ``Limits`` told all its limiters (a run's settings, a reset), kept for
    each limiter to apply when it is next used (or read): a gate's opening costs the same however
    many scopes a long-lived engine keeps, and a scope no run reaches is not touched, so a lazy one
    logs nothing for it. ``count`` numbers them (a limiter applied those up to its ``_seen``);
    ``runs`` holds them as ``(first, last, settings, when, reset)``, one per reset, and one per
    stretch of openings with equal settings: ``when``, the last one's instant, is all a limiter needs
    of them (``Controller.reconfigure`` twice at that instant does what it does for the whole
    stretch: the clamp, the window, the re-measure's date; slow start's record of slow answers
    counts two windows). ``Limits`` lets every limiter apply them and empties ``runs`` past
    ``RUNS_MAX`` (changed settings only: memory bounded, O(scopes) once in so many runs)."""

    __slots__ = ("count", "runs")

    RUNS_MAX = 32

    def __init__(self) -> None:
        self.count = 0
        self.runs: list[tuple[int, int, Settings, float, bool]] = []

    def add(self, settings: Settings, when: float, reset: bool) -> None:
        """One more (under the limiters' lock): ``settings`` at ``when``, after forgetting with ``reset``."""
        self.count = n = self.count + 1
        runs = self.runs
        if runs and not reset:
            first, _, before, _, was_reset = runs[-1]
            if not was_reset and (before is settings or before == settings):
                runs[-1] = (first, n, settings, when, False)
                return
        runs.append((n, n, settings, when, reset))
