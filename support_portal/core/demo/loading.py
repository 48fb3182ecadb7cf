"""Load the demo data set into an empty database, through the same import service as real files."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from support_portal.core.demo.generator import generate_demo_data, is_complete
from support_portal.core.imports.service import ImportResult, records_import
from support_portal.core.models import ImportRun
from support_portal.customers.models import Customer

# Enough to see what is wrong; the ImportRun rows keep the rest.
SHOWN_ERRORS_PER_FILE = 50


class DemoLoadError(Exception):
    """The import service refused a demo file: the messages name every bad row."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass(frozen=True, slots=True)
class DemoLoadOutcome:
    already_loaded: bool
    existing_customers: int
    directory: Path | None
    generated: bool


def demo_directory(customers: int, seed: int) -> Path:
    return Path(settings.VAR_DIR) / "demo" / f"{customers}-{seed}"


def demo_data_load(
    *, customers: int, seed: int = 1, progress: Callable[[str], None] = lambda message: None
) -> DemoLoadOutcome:
    """Generate (once, cached under var/demo/) and import the demo set unless customers exist already."""
    existing = Customer.objects.count()
    if existing:
        return DemoLoadOutcome(already_loaded=True, existing_customers=existing, directory=None, generated=False)

    directory = demo_directory(customers, seed)
    generated = not is_complete(directory)
    if generated:
        progress(f"Generating {customers:,} demo customers into {directory} ...")
        generate_demo_data(directory, customers=customers, seed=seed)

    result = records_import(directory=directory, actor=None, source=ImportRun.Source.COMMAND, progress=progress)
    if not result.ok:
        raise DemoLoadError(_import_errors(result))
    return DemoLoadOutcome(already_loaded=False, existing_customers=0, directory=directory, generated=generated)


def _import_errors(result: ImportResult) -> list[str]:
    """One line per refused file, then its bad rows (line, column, why) as the service reports them."""
    messages: list[str] = []
    for outcome in result.files:
        if outcome.succeeded:
            continue
        messages.append(f"{outcome.file_name}: {outcome.status}, {outcome.error_count} error(s)")
        messages.extend(f"  {error}" for error in outcome.errors[:SHOWN_ERRORS_PER_FILE])
        if outcome.error_count > SHOWN_ERRORS_PER_FILE:
            messages.append(f"  ... and {outcome.error_count - SHOWN_ERRORS_PER_FILE:,} more")
    return messages
