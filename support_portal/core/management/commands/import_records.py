"""`python manage.py import_records DIR`: loads the source CSV files of DIR (FORMATS.md)."""

import os
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from support_portal.core.imports.service import records_import, restore_set_aside_keys
from support_portal.core.models import ImportRun


class Command(BaseCommand):
    help = (
        "Load customers.csv, plans.csv, subscriptions.csv, charges.csv, logins.csv, usage_events.csv, "
        "coupons.csv, coupon_transactions.csv and submissions.csv from DIR (those present), each file "
        "all-or-nothing. Exits non-zero, listing every bad row, if any file is rejected."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("directory", type=Path, nargs="?", help="folder holding the CSV files")
        parser.add_argument(
            "--restore-keys",
            action="store_true",
            help="only re-add the foreign keys an interrupted parallel import left set aside (PostgreSQL)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="validate and count everything, then roll it all back"
        )
        parser.add_argument(
            "--jobs",
            type=int,
            default=min(4, os.cpu_count() or 1),
            help="files loaded at once on PostgreSQL, each after the files it references (default: CPUs, at most 4)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["restore_keys"]:
            restored = restore_set_aside_keys()
            self.stdout.write(f"Foreign keys restored: {restored}.")
            return
        directory: Path | None = options["directory"]
        if directory is None:
            raise CommandError("name the folder holding the CSV files")
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory")
        show_progress = options["verbosity"] >= 1

        def progress(message: str) -> None:
            self.stderr.write(message)
            self.stderr.flush()

        result = records_import(
            directory=directory,
            actor=None,
            source=ImportRun.Source.COMMAND,
            progress=progress if show_progress else None,
            dry_run=options["dry_run"],
            jobs=max(1, options["jobs"]),
        )
        if not result.files:
            self.stdout.write(f"No CSV files in {directory}.")
        for outcome in result.files:
            self.stdout.write(
                f"{outcome.file_name}: {outcome.status}: read {outcome.rows_read:,}, "
                f"inserted {outcome.rows_inserted:,}, updated {outcome.rows_updated:,}, errors {outcome.error_count:,}"
            )
            for error in outcome.errors:
                self.stderr.write(str(error))
            if outcome.error_count > len(outcome.errors):
                self.stderr.write(
                    f"{outcome.file_name}: … and {outcome.error_count - len(outcome.errors):,} more errors"
                )
        if result.dry_run:
            self.stdout.write("Dry run: nothing was changed.")
        if not result.ok:
            rejected = sum(1 for outcome in result.files if not outcome.succeeded)
            raise CommandError(f"{rejected} file(s) not imported ({result.error_count:,} errors)", returncode=1)
