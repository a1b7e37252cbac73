"""The figures of a run: recorded per measure, row, metric and repetition, summarised as min and
median, ratios paired by repetition, printed as tables and written as JSON.

Rule: a failed or skipped repetition is a gap (``None``), never a zero; it is left out of the
min, the median and its ratios, and the error is printed and kept in the JSON.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from .base import Rows, Sizes
from .measures import BY_NAME, Measure, Metric

Series = list[float | None]


def summary(values: Series) -> dict[str, float] | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return {"min": min(present), "median": statistics.median(present)}


def number(value: float | None) -> str:
    if value is None:
        return "-"
    value = float(value)
    if value.is_integer() and abs(value) < 1000:
        return f"{value:.0f}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"


@dataclass
class Results:
    reps: int
    sizes: Sizes
    figures: dict[str, dict[str, dict[str, Series]]] = field(default_factory=dict)
    row_system: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    load: list[dict[str, Any]] = field(default_factory=list)

    def record(self, measure: str, system: str, rep: int, rows: Rows) -> None:
        table = self.figures.setdefault(measure, {})
        for row, metrics in rows.items():
            self.row_system[row] = system
            series = table.setdefault(row, {})
            for key, value in metrics.items():
                series.setdefault(key, [None] * self.reps)[rep] = float(value)

    def fail(self, measure: str, system: str, rep: int, error: str) -> None:
        self.errors.append({"measure": measure, "system": system, "rep": rep, "error": error})

    def pairs(self, measure: Measure) -> list[tuple[str, str]]:
        rows = list(self.figures.get(measure.name, {}))
        if measure.pairs:
            return [(a, b) for a, b in measure.pairs if a in rows and b in rows]
        ours = [row for row in rows if self.row_system[row] == "disruptor"]
        others = [row for row in rows if self.row_system[row] != "disruptor"]
        return [(a, b) for a in ours for b in others]

    def ratios(self, measure: Measure, metric: Metric) -> list[dict[str, Any]]:
        table = self.figures.get(measure.name, {})
        found = []
        for numerator, denominator in self.pairs(measure):
            tops = table[numerator].get(metric.key)
            bottoms = table[denominator].get(metric.key)
            if tops is None or bottoms is None:
                continue
            values: Series = [
                top / bottom if top is not None and bottom else None
                for top, bottom in zip(tops, bottoms, strict=True)
            ]
            found.append(
                {
                    "metric": metric.key,
                    "numerator": numerator,
                    "denominator": denominator,
                    "values": values,
                    "summary": summary(values),
                }
            )
        return found

    # --- output ---

    def print_measure(self, name: str) -> None:
        measure = BY_NAME[name]
        table = self.figures.get(name, {})
        print(f"\n== {name}: {measure.title(self.sizes)} ==")
        if not table:
            print("  no figures (every system skipped or failed)")
        width = max([len(row) for row in table] + [24]) + 2
        for metric in measure.metrics:
            rows = [row for row in table if metric.key in table[row]]
            if not rows:
                continue
            better = "higher" if metric.higher_is_better else "lower"
            unit = f" ({metric.unit}, {better} is better)" if metric.unit else ""
            print(f"  {metric.key}{unit}")
            print(f"    {'':<{width}}{'min':>12}{'median':>12}   per repetition")
            for row in rows:
                values = table[row][metric.key]
                stats = summary(values) or {}
                each = " ".join(number(v) for v in values)
                print(
                    f"    {row:<{width}}{number(stats.get('min')):>12}"
                    f"{number(stats.get('median')):>12}   {each}"
                )
            if metric.ratio:
                for ratio in self.ratios(measure, metric):
                    stats = ratio["summary"] or {}
                    label = f"{ratio['numerator']} / {ratio['denominator']}"
                    print(
                        f"    ratio {label:<{width + 18}}min {number(stats.get('min'))}"
                        f"   median {number(stats.get('median'))}"
                    )
        for error in self.errors:
            if error["measure"] == name:
                print(f"  ! {error['system']}, repetition {error['rep'] + 1}: {error['error']}")

    def to_json(self) -> dict[str, Any]:
        measures: dict[str, Any] = {}
        for name, table in self.figures.items():
            measure = BY_NAME[name]
            measures[name] = {
                "title": measure.title(self.sizes),
                "rows": {
                    row: {
                        "system": self.row_system[row],
                        **{
                            key: {"values": values, "summary": summary(values)}
                            for key, values in metrics.items()
                        },
                    }
                    for row, metrics in table.items()
                },
                "ratios": [
                    ratio
                    for metric in measure.metrics
                    if metric.ratio
                    for ratio in self.ratios(measure, metric)
                ],
            }
        return {"measures": measures, "errors": self.errors, "load_samples": self.load}
