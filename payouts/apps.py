from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PayoutsConfig(AppConfig):
    name = "payouts"
    verbose_name = _("Payouts and notices")

    def ready(self) -> None:
        from payouts.monitoring import payouts_figures  # noqa: PLC0415 - app registry
        from support_portal.core.monitoring.figures import figure_provider_register  # noqa: PLC0415

        figure_provider_register("payouts", payouts_figures)
