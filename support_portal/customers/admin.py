import re
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from support_portal.core.admin_tools import BigTableAdmin
from support_portal.core.masking import mask_email, mask_phone
from support_portal.customers.models import (
    Charge,
    Coupon,
    CouponTransaction,
    Customer,
    Login,
    Plan,
    Subscription,
    UsageEvent,
)

PHONE_LIKE = re.compile(r"^[\d\-\s()+]{6,}$")


@admin.register(Customer)
class CustomerAdmin(BigTableAdmin):
    list_display = ["customer_id", "name", "masked_email", "masked_phone", "created_at"]
    search_fields = ["customer_id"]
    search_help_text = _("Customer id, email address or phone number (any hyphenation).")
    readonly_fields = ["phone_digits"]

    @admin.display(description=_("email"))
    def masked_email(self, obj: Customer) -> str:
        return mask_email(obj.email)

    @admin.display(description=_("phone"))
    def masked_phone(self, obj: Customer) -> str:
        return mask_phone(obj.phone)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Customer], search_term: str
    ) -> tuple[QuerySet[Customer], bool]:
        # Every branch is an indexed equality look-up: no LIKE scans over a million rows.
        term = search_term.strip()
        if not term:
            return queryset, False
        if "@" in term:
            return queryset.filter(email__iexact=term), False
        if PHONE_LIKE.match(term):
            digits = re.sub(r"\D", "", term)
            return queryset.filter(phone_digits=digits) | queryset.filter(customer_id=term), False
        return queryset.filter(customer_id=term), False


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ["plan_code", "name", "monthly_fee_jpy"]
    search_fields = ["plan_code", "name"]


@admin.register(Subscription)
class SubscriptionAdmin(BigTableAdmin):
    list_display = ["subscription_id", "customer", "plan", "payer", "payment_method", "started_at", "auto_renew"]
    list_select_related = ["customer", "plan", "payer"]
    list_filter = ["plan", "payment_method", "auto_renew"]
    search_fields = ["=subscription_id", "=customer__customer_id"]
    autocomplete_fields = ["customer", "payer", "plan"]


@admin.register(Charge)
class ChargeAdmin(BigTableAdmin):
    list_display = [
        "charge_id",
        "subscription",
        "amount_jpy",
        "charged_at",
        "period_start",
        "period_end",
        "promotional",
    ]
    list_select_related = ["subscription"]
    list_filter = ["promotional", "payment_method"]
    search_fields = ["=charge_id", "=subscription__subscription_id"]
    raw_id_fields = ["subscription"]


@admin.register(Login)
class LoginAdmin(BigTableAdmin):
    list_display = ["customer", "logged_in_at"]
    search_fields = ["=customer__customer_id"]
    raw_id_fields = ["customer"]


@admin.register(UsageEvent)
class UsageEventAdmin(BigTableAdmin):
    list_display = ["customer", "subscription", "used_at"]
    search_fields = ["=customer__customer_id"]
    raw_id_fields = ["customer", "subscription"]


class CouponTransactionInline(admin.TabularInline):
    model = CouponTransaction
    extra = 0
    fields = readonly_fields = ("transaction_id", "kind", "amount_jpy", "occurred_at", "store_name")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Coupon)
class CouponAdmin(BigTableAdmin):
    list_display = ["inquiry_number", "customer", "prefecture", "face_value_jpy", "expires_at", "via_app"]
    list_filter = ["via_app", "app_withdrawn", "prefecture"]
    search_fields = ["=inquiry_number", "=customer__customer_id"]
    raw_id_fields = ["customer"]
    inlines = [CouponTransactionInline]


@admin.register(CouponTransaction)
class CouponTransactionAdmin(BigTableAdmin):
    list_display = ["transaction_id", "coupon", "kind", "amount_jpy", "occurred_at", "store_name"]
    list_filter = ["kind"]
    search_fields = ["=transaction_id", "=coupon__inquiry_number"]
    raw_id_fields = ["coupon"]
