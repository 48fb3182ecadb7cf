from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BankingConfig(AppConfig):
    """Bank transfers (Zengin 総合振込 exports and results), original-method refunds and reconciliation."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "payouts.banking"
    label = "banking"
    verbose_name = _("Payouts: bank transfers, refunds and reconciliation")
