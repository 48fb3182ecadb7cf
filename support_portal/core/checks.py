"""Says when an interrupted `import_records` left foreign keys set aside (see `SetAsideForeignKey`)."""

from typing import Any

from django.core import checks
from django.db import DatabaseError


@checks.register(checks.Tags.database)
def set_aside_foreign_keys(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from support_portal.core.models import SetAsideForeignKey  # noqa: PLC0415 - models load after checks

    if not databases:
        return []
    try:
        keys = [str(key) for key in SetAsideForeignKey.objects.order_by("table_name", "constraint_name")]
    except DatabaseError:  # not migrated yet
        return []
    if not keys:
        return []
    return [
        checks.Warning(
            f"Foreign keys set aside by an interrupted import are missing: {', '.join(keys)}.",
            hint="Run `python manage.py import_records --restore-keys` (the next import also restores them).",
            id="core.W001",
        )
    ]
