from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

admin.site.site_header = "補償・返金バックオフィス"
admin.site.site_title = "Support Portal"

urlpatterns = [
    path(settings.ADMIN_URL_PATH, admin.site.urls),
    path("accounts/", include("support_portal.accounts.urls")),
    path("apply/", include("claims.urls")),
    # The REST API for source systems and providers (token auth, no session): support_portal/api.
    path("api/", include("support_portal.api.urls")),
    path("", RedirectView.as_view(url=f"/{settings.ADMIN_URL_PATH}", permanent=False)),
]
