from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PayoutsConfig(AppConfig):
    name = "payouts"
    verbose_name = _("Payouts and notices")

    def ready(self) -> None:
        from payouts.api import payouts_router, webhooks_router  # noqa: PLC0415 - app registry
        from support_portal.api.v1 import api_router_register  # noqa: PLC0415

        api_router_register("/payouts", payouts_router)
        api_router_register("/webhooks", webhooks_router)
        from payouts.monitoring import payouts_figures  # noqa: PLC0415 - app registry
        from support_portal.core.monitoring.figures import figure_provider_register  # noqa: PLC0415

        figure_provider_register("payouts", payouts_figures)
