"""A benchmark's verdict on one of its targets: the figure, the target, and what bounds it.

Every benchmark's `run()` returns its figures as a JSON-ready dict with a "checks" list
of these (as dicts); `python -m bench` gathers them into the table, bench/results.json,
the chart and docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Direction = Literal["min", "max"]  # "min": the figure must be at least the target


@dataclass(frozen=True)
class Check:
    benchmark: str  # e.g. "rivals"
    figure: str  # what is measured, short: "speed-up vs FanFicFare"
    value: float
    unit: str  # "x", "ms", "%", "jobs/s", "MiB"
    target: float
    direction: Direction
    bound: str  # what bounds the figure on this machine, one sentence

    @property
    def met(self) -> bool:
        return self.value >= self.target if self.direction == "min" else self.value <= self.target

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def check(
    benchmark: str,
    figure: str,
    value: float,
    unit: str,
    *,
    at_least: float | None = None,
    at_most: float | None = None,
    bound: str,
) -> dict[str, Any]:
    """One check as the dict a `run()` puts in its "checks" list; prints its verdict."""
    if (at_least is None) == (at_most is None):
        raise ValueError("a check has one target: at_least or at_most")
    direction: Direction = "min" if at_least is not None else "max"
    target = at_least if at_least is not None else at_most
    assert target is not None
    made = Check(benchmark, figure, value, unit, target, direction, bound)
    sign = ">=" if direction == "min" else "<="
    verdict = "met" if made.met else "NOT met"
    print(f"{benchmark}: {figure} {value:.3g} {unit} (target {sign} {target:g} {unit}: {verdict})")
    return made.as_dict()
