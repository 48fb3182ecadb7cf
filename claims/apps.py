from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ClaimsConfig(AppConfig):
    name = "claims"
    verbose_name = _("Compensation programs and claims")

    def ready(self) -> None:
        from claims.api import claims_router  # noqa: PLC0415 - app registry
        from support_portal.api.v1 import api_router_register  # noqa: PLC0415

        api_router_register("/programs", claims_router)
        from claims.monitoring import claims_figures  # noqa: PLC0415 - app registry
        from support_portal.core.monitoring.figures import figure_provider_register  # noqa: PLC0415

        figure_provider_register("claims", claims_figures)
