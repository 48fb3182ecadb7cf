from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "support_portal.core"
    label = "core"
    verbose_name = _("Operations")

    def ready(self) -> None:
        from support_portal.core import checks  # noqa: F401, PLC0415 - registers the database check
