"""Handlers of the sales example, one per job type: split, total, combine, report.

Run them with:  overseer-runner --handlers examples.sales.handlers
"""

from __future__ import annotations

import csv
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from runner import Job, Registry

DATA = Path(__file__).parent / "data"
registry = Registry()


def _rows(file: str) -> list[dict[str, str]]:
    with (DATA / file).open(newline="") as f:
        return list(csv.DictReader(f))


@registry.handler("split")
def split(job: Job) -> dict:
    """Cut the file's rows into ``shards`` contiguous ranges, one per total job."""
    count = len(_rows(job.args["file"]))
    shards = int(job.args["shards"])
    bounds = [count * i // shards for i in range(shards + 1)]
    return {"rows": count, "ranges": [[bounds[i], bounds[i + 1]] for i in range(shards)]}


@registry.handler("total")
def total(job: Job) -> dict:
    """Revenue and units per region over one shard of the file."""
    start, stop = job.results["split"]["ranges"][int(job.args["shard"])]
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    units: dict[str, int] = defaultdict(int)
    for row in _rows(job.args["file"])[start:stop]:
        quantity = int(row["quantity"])
        revenue[row["region"]] += quantity * Decimal(row["unit_price"])
        units[row["region"]] += quantity
    return {
        "rows": stop - start,
        "regions": {r: {"revenue": str(revenue[r]), "units": units[r]} for r in sorted(revenue)},
    }


@registry.handler("combine")
def combine(job: Job) -> dict:
    """Add up the shards' totals per region."""
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    units: dict[str, int] = defaultdict(int)
    rows = 0
    for shard in job.results.values():
        rows += shard["rows"]
        for region, figures in shard["regions"].items():
            revenue[region] += Decimal(figures["revenue"])
            units[region] += figures["units"]
    return {
        "rows": rows,
        "regions": {r: {"revenue": str(revenue[r]), "units": units[r]} for r in sorted(revenue)},
        "revenue": str(sum(revenue.values(), Decimal())),
    }


@registry.handler("report")
def report(job: Job) -> dict:
    """Rank the regions by revenue, with each one's share of the whole."""
    combined = job.results["combine"]
    whole = Decimal(combined["revenue"])
    ranked = sorted(combined["regions"].items(), key=lambda kv: -Decimal(kv[1]["revenue"]))
    return {
        "orders": combined["rows"],
        "revenue": combined["revenue"],
        "ranking": [
            f"{region}: {figures['revenue']} ({Decimal(figures['revenue']) / whole:.1%}), "
            f"{figures['units']} units"
            for region, figures in ranked
        ],
    }
