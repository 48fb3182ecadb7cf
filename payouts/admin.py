"""Payouts in the admin: read-only lists and pages; codes appear masked only, never in the list."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from payouts.models import Payout, PayoutTransition
from support_portal.core.admin_tools import BigTableAdmin


class PayoutTransitionInline(admin.TabularInline):
    model = PayoutTransition
    extra = 0
    can_delete = False
    fields = readonly_fields = ("at", "actor", "status_before", "status_after", "note")
    ordering = ["at", "id"]
    max_num = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Payout)
class PayoutAdmin(BigTableAdmin):
    list_display = [
        "id",
        "claim",
        "program",
        "method",
        "amount_jpy",
        "status",
        "attempts",
        "expires_at",
        "updated_at",
    ]
    list_filter = ["status", "method", "program"]
    list_select_related = ["claim", "program"]
    search_fields = ["=idempotency_key", "=provider_reference"]
    inlines = [PayoutTransitionInline]
    fields = readonly_fields = (
        "claim",
        "program",
        "payee",
        "method",
        "amount_jpy",
        "status",
        "idempotency_key",
        "expires_at",
        "provider",
        "provider_reference",
        "masked_code",
        "attempts",
        "last_error",
        "created_at",
        "updated_at",
        "issued_at",
    )

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).select_related("secret")

    @admin.display(description="code (masked)")
    def masked_code(self, obj: Payout) -> str:
        secret = getattr(obj, "secret", None)
        return secret.masked if secret is not None else "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
