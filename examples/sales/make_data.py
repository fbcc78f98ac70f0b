"""Writes data/orders.csv, the example's input: a year of orders from a fictional shop.

Seeded, so the file is the same every time; it is committed, and this script is how it
was made: python -m examples.sales.make_data
"""

import csv
import random
from datetime import date, timedelta
from pathlib import Path

REGIONS = ["north", "south", "east", "west", "central"]
PRODUCTS = {"kettle": 39.0, "toaster": 54.5, "blender": 89.9, "grinder": 27.25, "scale": 19.99}


def main() -> None:
    rng = random.Random(20261204)
    path = Path(__file__).parent / "data" / "orders.csv"
    start = date(2026, 1, 1)
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["order_id", "date", "region", "product", "quantity", "unit_price"])
        for order_id in range(1, 4001):
            product = rng.choice(list(PRODUCTS))
            writer.writerow([
                order_id,
                (start + timedelta(days=rng.randrange(365))).isoformat(),
                rng.choices(REGIONS, weights=[5, 3, 4, 2, 1])[0],
                product,
                rng.randint(1, 6),
                PRODUCTS[product],
            ])


if __name__ == "__main__":
    main()
