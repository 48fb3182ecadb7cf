from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
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
from support_portal.customers.selectors import customer_360, customer_search

# Leads see full contact data on the 360 page; everyone else sees it masked (docs/support_desk.md).
UNMASKED_CONTACT_PERMISSION = "identity.view_unmasked_contact"
IDENTITY_RECOVERY_PERMISSION = "identity.add_identityrecoverycase"


@admin.register(Customer)
class CustomerAdmin(BigTableAdmin):
    list_display = ["customer_id", "name", "masked_email", "masked_phone", "created_at"]
    search_fields = ["customer_id"]
    search_help_text = _("Customer id, email address, phone number (any hyphenation) or the beginning of the name.")
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
        # Every shape goes to its index (selectors.customer_search): no LIKE '%…%' over a million rows.
        return customer_search(queryset, search_term), False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The customer 360 page (read-only; customers are source data, changed only by imports).

        No query string switches to the default form (it would show the contact data in clear): every GET
        is the 360 page, masked unless the user holds the unmasked-contact permission; a POST is for
        someone who may change customers (no role may).
        """
        if request.method != "GET":
            if not self.has_change_permission(request):
                raise PermissionDenied
            return super().change_view(request, object_id, form_url, extra_context)
        # Permission first: a refused user must not learn which customer ids exist (403, not 404).
        if not self.has_view_permission(request):
            raise PermissionDenied
        customer = get_object_or_404(Customer, pk=object_id)
        if not self.has_view_permission(request, customer):
            raise PermissionDenied
        user = request.user
        data = customer_360(customer=customer, unmasked=user.has_perm(UNMASKED_CONTACT_PERMISSION))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Customer %(id)s") % {"id": customer.customer_id},
            "original": customer,
            "c360": data,
            "can_recover_identity": user.has_perm(IDENTITY_RECOVERY_PERMISSION),
            "recovery_add_url": reverse("admin:identity_identityrecoverycase_add") + f"?customer={customer.pk}",
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/customers/customer/customer_360.html", context)


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
