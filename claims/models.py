"""Compensation programs and the submissions (applications, requests) made under them."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from support_portal.core.audit import decision_history
from support_portal.customers.models import ID_LENGTH


class Policy(models.TextChoices):
    """The seven policies of SPEC.md; each ships as a program template with the same slug."""

    LOGIN_OUTAGE_2024 = "login-outage-2024", _("Monthly fees while login was impossible (2024)")
    COUPON_OUTAGE_2023 = "coupon-outage-2023", _("Coupon payment outage (2023-02-24)")
    AUTORENEW_60DAY = "autorenew-60day", _("Auto-renewal money-back (60 days)")
    COOLING_OFF_7DAY = "cooling-off-7day", _("Cooling-off withdrawal (7 days)")
    SERVICE_FAILURE_PRORATA = "service-failure-prorata", _("Service not delivered (pro rata + penalty)")
    COMPANY_TERMINATION = "company-termination", _("Termination for breach (refund minus fee)")
    OVERPAYMENT = "overpayment", _("Double or excess charges")

    @classmethod
    def subject_kind(cls, policy: str) -> str:
        """What a submission's `subject` names under this policy (FORMATS.md)."""
        if policy == cls.LOGIN_OUTAGE_2024:
            return "customer"
        if policy == cls.COUPON_OUTAGE_2023:
            return "coupon"
        return "charge"


@decision_history()
class Program(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PREVIEW = "preview", _("Preview")
        OPEN = "open", _("Open")
        CLOSED = "closed", _("Closed")

    slug = models.SlugField(_("slug"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=200)
    policy = models.CharField(_("policy"), max_length=32, choices=Policy.choices)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.DRAFT)

    class Meta:
        verbose_name = _("program")
        verbose_name_plural = _("programs")

    def __str__(self) -> str:
        return self.slug


class Channel(models.TextChoices):
    WEB = "web", _("Web form")
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("Email")
    CHAT = "chat", _("Chat")
    IMPORT = "import", _("File import")


class PayoutMethod(models.TextChoices):
    ATM_CASH = "atm_cash", _("Cash at Seven Bank ATMs")
    POINTS_AMAZON = "points:amazon", _("Amazon gift card")
    POINTS_PONTA = "points:ponta", _("Ponta points")
    POINTS_PAYPAY = "points:paypay", _("PayPay")
    POINTS_EDY = "points:edy", _("Edy")
    POINTS_NANACO = "points:nanaco", _("nanaco")
    BANK_TRANSFER = "bank_transfer", _("Bank transfer")
    ORIGINAL_METHOD = "original_method", _("Refund to the original payment method")


class Fault(models.TextChoices):
    COMPANY = "company", _("Company")
    MEMBER = "member", _("Member")


@decision_history()
class Submission(models.Model):
    """One application or request as received. All are kept; per subject the latest is official."""

    submission_id = models.CharField(_("submission id"), max_length=ID_LENGTH, primary_key=True)
    program = models.ForeignKey(Program, on_delete=models.PROTECT, to_field="slug", related_name="submissions")
    # A customer id, coupon inquiry number or charge id, depending on the program's policy.
    subject = models.CharField(_("subject"), max_length=ID_LENGTH)
    submitted_at = models.DateTimeField(_("submitted at"))
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices, default=Channel.IMPORT)
    contact_email = models.EmailField(_("contact email"), blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=32, blank=True)
    payout_method = models.CharField(_("payout method"), max_length=32, choices=PayoutMethod.choices, blank=True)
    reason = models.CharField(_("reason"), max_length=64, blank=True)
    fault = models.CharField(_("fault"), max_length=16, choices=Fault.choices, blank=True)
    effective_at = models.DateTimeField(_("effective at"), null=True, blank=True)

    class Meta:
        verbose_name = _("submission")
        verbose_name_plural = _("submissions")
        indexes = [
            models.Index(fields=["program", "subject", "-submitted_at"], name="submission_latest_idx"),
        ]

    def __str__(self) -> str:
        return self.submission_id
