"""API keys in the admin: managers (and superusers) create a key — shown once, on the page that follows —
and revoke keys; the list shows each key's prefix, scopes and last use. Both go through the services
(audited); nothing else about a key can be changed."""

from __future__ import annotations

from typing import Any, cast

from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from support_portal.api.forms import ApiKeyCreateForm
from support_portal.api.models import ApiKey
from support_portal.api.services import ApiKeyRefused, api_key_create, api_key_revoke

FIELDS = ["name", "key_prefix", "scopes", "created_by", "created_at", "last_used_at", "revoked_at", "revoked_by"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "key_prefix", "scopes", "created_by", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    list_select_related = ["created_by"]
    fields = tuple(FIELDS)
    readonly_fields = FIELDS
    actions = ["revoke"]

    @admin.display(description=_("prefix"), ordering="prefix")
    def key_prefix(self, api_key: ApiKey) -> str:
        return f"spk_{api_key.prefix}_…"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("api.revoke_apikey")

    @admin.action(description=_("Revoke the selected API keys"), permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        actor = cast(User, request.user)
        ids = list(queryset.filter(revoked_at__isnull=True).order_by("pk").values_list("pk", flat=True))
        for api_key_id in ids:
            api_key_revoke(api_key_id=api_key_id, actor=actor)
        self.message_user(
            request,
            ngettext("%(count)d API key revoked.", "%(count)d API keys revoked.", len(ids)) % {"count": len(ids)},
            messages.SUCCESS,
        )

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        created = None
        form = ApiKeyCreateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                created = api_key_create(
                    name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"], actor=cast(User, request.user)
                )
            except ApiKeyRefused as refused:
                form.add_error(None, refused.message)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Create an API key"),
            "form": form,
            "created": created,
        }
        response = TemplateResponse(request, "admin/api/apikey/create.html", context)
        # The key is on this page once: never cached anywhere on the way.
        response["Cache-Control"] = "no-store"
        return response
