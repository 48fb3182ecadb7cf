from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "support_portal.accounts"
    label = "accounts"
    verbose_name = _("Security")

    def ready(self) -> None:
        from support_portal.accounts import checks  # noqa: F401, PLC0415 - registers the start-up notice
