from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from support_portal.core.demo.loading import DemoLoadError, demo_data_load


class Command(BaseCommand):
    help = (
        "Loads the demo data set once: generates it under var/demo/<customers>-<seed>/ (cached) and imports it "
        "through the import service. Does nothing when the database already has customers."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--customers", type=int, default=2000, help="number of demo customers (default 2000)")
        parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")

    def handle(self, *args: Any, **options: Any) -> None:
        customers: int = options["customers"]
        if customers < 1:
            raise CommandError("--customers must be at least 1")
        try:
            outcome = demo_data_load(customers=customers, seed=options["seed"], progress=self.stdout.write)
        except DemoLoadError as error:
            raise CommandError("The demo data was refused:\n  " + "\n  ".join(error.messages)) from error
        if outcome.already_loaded:
            self.stdout.write(
                f"Demo data is already loaded ({outcome.existing_customers:,} customers in the database); "
                "nothing to do."
            )
            return
        self.stdout.write(self.style.SUCCESS(f"Loaded the demo data from {outcome.directory}."))
