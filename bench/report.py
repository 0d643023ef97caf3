"""One table for every benchmark: a row is a measured figure next to its in-run baseline."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    section: str
    metric: str
    value: str
    baseline: str = ""
    ratio: str = ""
    goal: str = ""


def ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x" if baseline else "n/a"


def render(rows: list[Row]) -> str:
    """A Markdown table, so docs/benchmarks.md can hold the latest run verbatim."""
    header = ("section", "metric", "value", "baseline", "ratio", "goal")
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for row in rows:
        cells = (row.section, row.metric, row.value, row.baseline, row.ratio, row.goal)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
