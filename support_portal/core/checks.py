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


@checks.register(checks.Tags.security, deploy=True)
def metrics_protected(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Production serves /metrics to Prometheus: it needs a token or an allow-list (else it is a 404)."""
    from django.conf import settings  # noqa: PLC0415

    if settings.METRICS_TOKEN or settings.METRICS_ALLOWED_NETWORKS:
        if settings.METRICS_TOKEN and len(settings.METRICS_TOKEN) < 32:
            return [checks.Warning("METRICS_TOKEN is shorter than 32 characters.", id="core.W003")]
        return []
    return [
        checks.Warning(
            "Neither METRICS_TOKEN nor METRICS_ALLOWED_NETWORKS is set: /metrics answers 404 and Prometheus "
            "cannot scrape the back office.",
            hint="Set METRICS_TOKEN to a random value of 32+ characters (docs/operations.md, Monitor).",
            id="core.W002",
        )
    ]
