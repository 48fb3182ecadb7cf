import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from support_portal.core.demo.generator import generate_demo_data


class Command(BaseCommand):
    help = (
        "Writes a realistic demo data set as the import CSV files (FORMATS.md) into --out. "
        "The same --seed and --customers give byte-identical files."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, required=True, help="number of customers")
        parser.add_argument("--out", type=Path, required=True, help="folder to write the CSV files into")
        parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
        parser.add_argument(
            "--workers", type=int, default=None, help="generator processes (default: CPUs, max 8); output is the same"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        customers: int = options["customers"]
        if customers < 1:
            raise CommandError("--customers must be at least 1")
        started = time.monotonic()
        last_report = [started]

        def report(done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or now - last_report[0] >= 5:
                last_report[0] = now
                self.stdout.write(f"  {done:,}/{total:,} customers ({now - started:.0f} s)")

        data_set = generate_demo_data(
            options["out"], customers=customers, seed=options["seed"], workers=options["workers"], progress=report
        )
        elapsed = time.monotonic() - started
        self.stdout.write(self.style.SUCCESS(f"Wrote {data_set.directory} in {elapsed:.1f} s:"))
        for name, count in data_set.rows.items():
            self.stdout.write(f"  {name + '.csv':<24} {count:>12,} rows")
