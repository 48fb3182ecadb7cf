from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "support_portal.core"
    label = "core"
    verbose_name = _("Operations")

    def ready(self) -> None:
        from celery.signals import task_postrun, task_prerun  # noqa: PLC0415

        from support_portal.core import checks  # noqa: F401, PLC0415 - registers the database check
        from support_portal.core.audit import (  # noqa: PLC0415 - app registry
            audit_database_functions_install,
            audit_session_label_apply,
            audit_task_finished,
            audit_task_started,
        )

        # Once per migrate (sender=self), after every app's migrations: see audit.py.
        post_migrate.connect(audit_database_functions_install, sender=self, dispatch_uid="core_audit_functions")
        # Every session says which process or Celery task it is (`application_name`, in the audit context).
        connection_created.connect(audit_session_label_apply, dispatch_uid="core_audit_session_label")
        task_prerun.connect(audit_task_started, dispatch_uid="core_audit_task_started")
        task_postrun.connect(audit_task_finished, dispatch_uid="core_audit_task_finished")

        # Monitoring (docs/operations.md "Monitor"): log context of tasks, task outcomes, core's figures.
        from support_portal.core.monitoring.context import context_signals_connect  # noqa: PLC0415
        from support_portal.core.monitoring.core_figures import core_figures  # noqa: PLC0415
        from support_portal.core.monitoring.figures import figure_provider_register  # noqa: PLC0415
        from support_portal.core.monitoring.tasks import task_signals_connect  # noqa: PLC0415

        context_signals_connect()
        task_signals_connect()
        figure_provider_register("core", core_figures)
