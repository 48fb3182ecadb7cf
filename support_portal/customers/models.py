"""Customer and billing data as the source systems hand it over (FORMATS.md, `import_records`).

The source systems' ids are the primary keys: re-importing a file upserts by id, and foreign keys are
the ids the files use. Amounts are integer yen. Instants are stored in UTC (shown in Asia/Tokyo);
service periods are JST calendar dates with an exclusive end.

Audit: updates and deletes of these rows are recorded by database triggers (pghistory) with the
before and after values and the acting user or import run; creates are recorded by the ImportRun that
loaded them (one row per file with who, when and the file's checksum) — see docs/audit.md.
"""

from typing import Any

from django.db import models
from django.db.models.functions import Coalesce, Lower
from django.utils.translation import gettext_lazy as _

from support_portal.core.audit import source_history

ID_LENGTH = 64
PHONE_LENGTH = 32


class DigitsOnly(models.Func):
    """The digits of a text ("090-1234-5678" -> "09012345678"), computed by the database.

    PostgreSQL drops every character that is not 0-9. SQLite (the first-run database only) has no regular
    expressions in SQL: it drops the separators phone numbers are written with.
    """

    arity = 1
    output_field = models.CharField(max_length=PHONE_LENGTH)
    SQLITE_SEPARATORS = ("-", " ", "(", ")", "+", ".", "/", "－", "‐", "ー", "　", "（", "）")

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(compiler, connection, template="regexp_replace(%(expressions)s, '[^0-9]', '', 'g')")

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        template = "%(expressions)s"
        for separator in self.SQLITE_SEPARATORS:
            template = f"replace({template}, '{separator}', '')"
        return self.as_sql(compiler, connection, template=template)


class PaymentMethod(models.TextChoices):
    CARD = "card", _("Credit card")
    CARRIER = "carrier", _("Carrier billing")
    APPLE_IAP = "apple_iap", _("Apple in-app purchase")
    GOOGLE_PLAY = "google_play", _("Google Play billing")
    CONVENIENCE = "convenience", _("Convenience store")
    BANK = "bank", _("Bank transfer")
    POINTS = "points", _("Points")

    @classmethod
    def app_store_methods(cls) -> frozenset[str]:
        """Purchases the stores refund themselves; we can only tell the customer how to ask."""
        return frozenset({cls.APPLE_IAP, cls.GOOGLE_PLAY})


@source_history()
class Customer(models.Model):
    customer_id = models.CharField(_("customer id"), max_length=ID_LENGTH, primary_key=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True)
    phone = models.CharField(_("phone"), max_length=PHONE_LENGTH, blank=True)
    # Digits only, so a search typed with any hyphenation ("090-1234-5678", "09012345678") matches. A
    # stored generated column: always in step with `phone`, whoever writes it, and COPY fills it itself.
    phone_digits = models.GeneratedField(
        expression=DigitsOnly("phone"),
        output_field=models.CharField(_("phone (digits)"), max_length=PHONE_LENGTH),
        db_persist=True,
        verbose_name=_("phone (digits)"),
    )
    created_at = models.DateTimeField(_("created at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        indexes = [
            models.Index(Lower("email"), name="customer_email_lower_idx"),
            models.Index(fields=["phone_digits"], name="customer_phone_digits_idx"),
            # Name search is by prefix (`LIKE 'prefix%'`): varchar_pattern_ops compares byte-wise, so the
            # index serves it whatever the collation (PostgreSQL; other databases ignore the opclass).
            models.Index(fields=["name"], opclasses=["varchar_pattern_ops"], name="customer_name_prefix_idx"),
        ]

    def __str__(self) -> str:
        return self.customer_id


@source_history()
class Plan(models.Model):
    plan_code = models.CharField(_("plan code"), max_length=ID_LENGTH, primary_key=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    monthly_fee_jpy = models.PositiveIntegerField(_("monthly list price (JPY)"))

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")

    def __str__(self) -> str:
        return self.plan_code


@source_history()
class Subscription(models.Model):
    subscription_id = models.CharField(_("subscription id"), max_length=ID_LENGTH, primary_key=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="subscriptions")
    # Not indexed: a handful of plans over millions of subscriptions is never selective, and every query
    # by plan aggregates over all of them (hash joins). Building such an index cost 1.3-2 s of a 1M import.
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions", db_index=False)
    # Empty means the customer pays for their own subscription; refunds go to the payer. Indexed where
    # set only (subscription_payer_idx): the customer page's "pays for" list.
    payer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="paid_subscriptions",
        db_index=False,
    )
    payment_method = models.CharField(_("payment method"), max_length=16, choices=PaymentMethod.choices)
    started_at = models.DateTimeField(_("started at"))
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    auto_renew = models.BooleanField(_("auto-renew"), default=False)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        indexes = [
            models.Index(fields=["payer"], condition=models.Q(payer__isnull=False), name="subscription_payer_idx")
        ]

    def __str__(self) -> str:
        return self.subscription_id

    @property
    def payer_id_effective(self) -> str:
        return self.payer_id or self.customer_id


@source_history()
class Charge(models.Model):
    charge_id = models.CharField(_("charge id"), max_length=ID_LENGTH, primary_key=True)
    # Not indexed alone: charge_sub_period_idx (subscription, period_start) serves lookups by subscription.
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="charges", db_index=False)
    amount_jpy = models.PositiveIntegerField(_("amount (JPY)"))
    charged_at = models.DateTimeField(_("charged at"))
    period_start = models.DateField(_("service period start"))
    period_end = models.DateField(_("service period end (exclusive)"))
    # Empty means the subscription's payment method.
    payment_method = models.CharField(_("payment method"), max_length=16, choices=PaymentMethod.choices, blank=True)
    promotional = models.BooleanField(_("promotional / free"), default=False)

    class Meta:
        verbose_name = _("charge")
        verbose_name_plural = _("charges")
        indexes = [models.Index(fields=["subscription", "period_start"], name="charge_sub_period_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(period_end__gt=models.F("period_start")), name="charge_period_not_empty"
            ),
        ]

    def __str__(self) -> str:
        return self.charge_id


class Login(models.Model):
    # Not indexed alone: login_natural_key (customer, logged_in_at) serves lookups by customer.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="logins", db_index=False)
    logged_in_at = models.DateTimeField(_("logged in at"))

    class Meta:
        verbose_name = _("login")
        verbose_name_plural = _("logins")
        constraints = [models.UniqueConstraint(fields=["customer", "logged_in_at"], name="login_natural_key")]

    def __str__(self) -> str:
        return f"{self.customer_id} @ {self.logged_in_at:%Y-%m-%d %H:%M}"


class UsageEvent(models.Model):
    # Indexed by usage_event_natural_key (customer first): no index of its own.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="usage_events", db_index=False)
    # Not indexed alone: usage_sub_used_idx (subscription, used_at) serves lookups by subscription.
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, null=True, blank=True, related_name="usage_events", db_index=False
    )
    used_at = models.DateTimeField(_("used at"))

    class Meta:
        verbose_name = _("usage event")
        verbose_name_plural = _("usage events")
        constraints = [
            # The file has no id: the row itself is the key (an empty subscription counts as one value).
            models.UniqueConstraint(
                "customer", Coalesce("subscription", models.Value("")), "used_at", name="usage_event_natural_key"
            ),
        ]
        indexes = [models.Index(fields=["subscription", "used_at"], name="usage_sub_used_idx")]

    def __str__(self) -> str:
        return f"{self.customer_id} @ {self.used_at:%Y-%m-%d %H:%M}"


@source_history()
class Coupon(models.Model):
    inquiry_number = models.CharField(_("inquiry number"), max_length=ID_LENGTH, primary_key=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="coupons")
    prefecture = models.CharField(_("prefecture"), max_length=16, blank=True)
    face_value_jpy = models.PositiveIntegerField(_("face value (JPY)"))
    issued_at = models.DateTimeField(_("issued at"))
    expires_at = models.DateTimeField(_("expires at"))
    via_app = models.BooleanField(_("loaded into the app"), default=False)
    app_withdrawn = models.BooleanField(_("app account withdrawn"), default=False)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")

    def __str__(self) -> str:
        return self.inquiry_number


class CouponTransactionKind(models.TextChoices):
    CHARGE = "charge", _("Charge (load)")
    PAYMENT = "payment", _("Payment")
    REVERSAL = "reversal", _("Reversal")
    # Remedies written by claims.remedies when a coupon-outage claim is approved (not imported):
    # a payment restored to the balance, and the expiry extended to `extended_to` (amount 0).
    RESTORATION = "restoration", _("Restoration (remedy)")
    EXPIRY_EXTENSION = "expiry_extension", _("Expiry extension (remedy)")
    # A remedy taken back when the claim's decision no longer supports it: a restoration's amount leaves
    # the balance again; a withdrawn expiry extension moves nothing (amount 0, no `extended_to`).
    REMEDY_REVERSAL = "remedy_reversal", _("Remedy reversed")
    # A coupon-outage claim's payout received: the balance paid out leaves the coupon (payouts.services).
    # None of these back-office kinds can be imported (core.imports.schema lists charge/payment/reversal).
    CASH_OUT = "cash_out", _("Paid out (claim)")


@source_history()
class CouponTransaction(models.Model):
    transaction_id = models.CharField(_("transaction id"), max_length=ID_LENGTH, primary_key=True)
    # Not indexed alone: coupon_tx_coupon_time_idx (coupon, occurred_at) serves lookups by coupon.
    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="transactions", db_index=False)
    kind = models.CharField(_("kind"), max_length=16, choices=CouponTransactionKind.choices)
    amount_jpy = models.PositiveIntegerField(_("amount (JPY)"))
    occurred_at = models.DateTimeField(_("occurred at"))
    store_name = models.CharField(_("store"), max_length=200, blank=True)
    # expiry_extension rows only: the coupon's new expiry (Coupon.expires_at keeps the original one).
    extended_to = models.DateTimeField(_("expiry extended to"), null=True, blank=True)

    class Meta:
        verbose_name = _("coupon transaction")
        verbose_name_plural = _("coupon transactions")
        indexes = [models.Index(fields=["coupon", "occurred_at"], name="coupon_tx_coupon_time_idx")]
        constraints = [
            # Money rows move a positive amount; an expiry extension or its reversal (remedy rows) may move none.
            models.CheckConstraint(
                condition=models.Q(amount_jpy__gt=0)
                | models.Q(kind__in=["expiry_extension", "remedy_reversal"], amount_jpy=0),
                name="coupon_tx_amount_positive",
            )
        ]

    def __str__(self) -> str:
        return self.transaction_id
