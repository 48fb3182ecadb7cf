"""Compensation programs and the submissions (applications, requests) made under them."""

import datetime as dt
from typing import Any

import pghistory
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from claims.parameters import ParameterError, PolicyParameters, parameters_for
from support_portal.core.audit import decision_history
from support_portal.core.business_days import end_of_day_jst
from support_portal.customers.models import ID_LENGTH, Customer


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


class ApplicationRule(models.TextChoices):
    """Who must apply (submit) before a claim can be paid."""

    REQUIRED = "required", _("Everyone must apply by the deadline")
    NOT_REQUIRED = "not_required", _("No application needed (detected by the company)")
    NOT_REQUIRED_FOR_APP_COUPONS = (
        "not_required_for_app_coupons",
        _("No application for coupons in the app (not withdrawn); others apply by the deadline"),
    )


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
    # The policy's numbers (claims.parameters); validated by the policy's parameter class.
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    opens_at = models.DateTimeField(_("opens at"), null=True, blank=True)
    # "Apply by D" = until D 23:59:59 JST (SPEC); empty = no deadline.
    application_deadline = models.DateField(_("application deadline"), null=True, blank=True)
    receipt_deadline = models.DateField(_("receipt deadline"), null=True, blank=True)
    application_rule = models.CharField(
        _("who must apply"), max_length=32, choices=ApplicationRule.choices, default=ApplicationRule.REQUIRED
    )
    # A list of PayoutMethod values (JSON, not ArrayField: the zero-config first run is on SQLite).
    payout_methods = models.JSONField(_("allowed payout methods"), default=list, blank=True)
    default_payout_method = models.CharField(
        _("default payout method"), max_length=32, choices=PayoutMethod.choices, blank=True
    )
    # Maker-checker: a claim above this needs a second approver; empty = never.
    second_approval_above_jpy = models.PositiveIntegerField(_("second approval above (JPY)"), null=True, blank=True)
    auto_approve_max_jpy = models.PositiveIntegerField(_("auto-approve up to (JPY)"), default=0)
    qa_sample_percent = models.PositiveSmallIntegerField(
        _("QA sample (%)"), default=0, validators=[MaxValueValidator(100)]
    )

    class Meta:
        verbose_name = _("program")
        verbose_name_plural = _("programs")
        permissions = [
            ("run_program", _("Can preview and run a program's eligibility computation")),
        ]
        constraints = [
            models.CheckConstraint(condition=models.Q(qa_sample_percent__lte=100), name="program_qa_sample_percent"),
        ]

    def __str__(self) -> str:
        return self.slug

    def typed_parameters(self) -> PolicyParameters:
        """The policy's parameter dataclass (SPEC defaults for missing keys); ParameterError if invalid."""
        return parameters_for(self.policy, self.parameters)

    def can_run(self) -> bool:
        return self.status != self.Status.CLOSED

    def can_set_status(self, status: str) -> bool:
        """Status transitions: draft → preview → open → closed, and preview back to draft."""
        return status in PROGRAM_STATUS_TRANSITIONS.get(self.status, frozenset())

    def application_closes_at(self) -> dt.datetime | None:
        """ "Apply by D" = until D 23:59:59(.999999) JST; None when there is no deadline."""
        return end_of_day_jst(self.application_deadline) if self.application_deadline else None

    def accepts_applications(self, *, at: dt.datetime) -> bool:
        """Open, already opened (opens_at) and not past the application deadline at instant `at`."""
        if self.status != self.Status.OPEN:
            return False
        if self.opens_at is not None and at < self.opens_at:
            return False
        closes_at = self.application_closes_at()
        return closes_at is None or at <= closes_at

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        try:
            self.typed_parameters()
        except ParameterError as exc:
            errors["parameters"] = [f"{field}: {message}" for field, message in exc.errors.items()]
        unknown = [m for m in self.payout_methods or [] if m not in PayoutMethod.values]
        if not isinstance(self.payout_methods, list) or unknown:
            errors["payout_methods"] = _("unknown payout methods: %(methods)s") % {"methods": unknown}
        elif self.default_payout_method and self.default_payout_method not in self.payout_methods:
            errors["default_payout_method"] = _("must be one of the allowed payout methods")
        if self.application_deadline and self.receipt_deadline and self.receipt_deadline < self.application_deadline:
            errors["receipt_deadline"] = _("must not be before the application deadline")
        if errors:
            raise ValidationError(errors)


PROGRAM_STATUS_TRANSITIONS: dict[str, frozenset[str]] = {
    Program.Status.DRAFT: frozenset({Program.Status.PREVIEW}),
    Program.Status.PREVIEW: frozenset({Program.Status.DRAFT, Program.Status.OPEN}),
    Program.Status.OPEN: frozenset({Program.Status.CLOSED}),
    Program.Status.CLOSED: frozenset(),
}


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


@decision_history()
class ApplicationDetails(models.Model):
    """What a web application form adds to its submission beyond the shared columns (coupon programs).

    A table of its own so the submissions import (COPY with a fixed column list) is unaffected.
    """

    submission = models.OneToOneField(
        Submission, on_delete=models.PROTECT, primary_key=True, related_name="application_details"
    )
    applicant_name = models.CharField(_("applicant name"), max_length=200, blank=True)
    prefecture = models.CharField(_("prefecture"), max_length=8, blank=True)
    travel_date = models.DateField(_("travel date"), null=True, blank=True)

    class Meta:
        verbose_name = _("application details")
        verbose_name_plural = _("application details")

    def __str__(self) -> str:
        return str(self.submission_id)


def set_history() -> Any:
    """`decision_history()` with statement-level triggers, for the tables program_run writes in bulk.

    The same events (a snapshot on insert, on every update, on delete, with the audit context), but
    written once per statement from its transition table (one INSERT … SELECT of all rows the
    statement touched) instead of once per row: a run creating 400k claims writes their history set-based.
    """
    return pghistory.track(
        pghistory.InsertEvent("insert"),
        pghistory.UpdateEvent("update"),
        pghistory.DeleteEvent("delete"),
        level=pghistory.Statement,
    )


class ClaimStatus(models.TextChoices):
    COMPUTED = "computed", _("Computed")
    PENDING_REVIEW = "pending_review", _("Pending review")
    INFO_REQUESTED = "info_requested", _("Information requested")
    # Above the program's second_approval_above_jpy: one approval recorded, a second person must approve.
    AWAITING_SECOND_APPROVAL = "awaiting_second_approval", _("Awaiting second approval")
    APPROVED = "approved", _("Approved")
    REJECTED = "rejected", _("Rejected")
    NEEDS_REREVIEW = "needs_rereview", _("Needs re-review (source data changed after a decision)")

    @classmethod
    def decided(cls) -> frozenset[str]:
        """Statuses whose amount a person has decided on: a recomputation must not change it silently.

        A first approval counts: the second approver must approve the amount the first one saw.
        """
        return frozenset({cls.APPROVED, cls.REJECTED, cls.AWAITING_SECOND_APPROVAL})


# What a reviewer still has to decide (the review queues; /metrics and the Operations health page).
AWAITING_REVIEW_STATUSES: tuple[str, ...] = (
    ClaimStatus.PENDING_REVIEW,
    ClaimStatus.AWAITING_SECOND_APPROVAL,
    ClaimStatus.NEEDS_REREVIEW,
)


@set_history()
class Claim(models.Model):
    """One subject's case under one program: the engine's entitlement plus the review decision."""

    # Foreign keys here carry no index of their own (Meta.indexes lists the useful ones): a run inserts
    # hundreds of thousands of claims, and each index (Django adds a second `_like` one to every varchar
    # key) costs every insert; program_id is the prefix of the unique (program, subject) index.
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="claims", db_index=False)
    # A customer id, coupon inquiry number or charge id (Policy.subject_kind).
    subject = models.CharField(_("subject"), max_length=ID_LENGTH)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    # Who receives the money: the payer of the charge when that differs from the user (SPEC).
    payee = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    status = models.CharField(_("status"), max_length=32, choices=ClaimStatus.choices, default=ClaimStatus.COMPUTED)
    eligible = models.BooleanField(_("eligible"), default=False)
    # Stable code of why not eligible (claims.engine.types.Reason); blank when eligible.
    reason = models.CharField(_("reason"), max_length=64, blank=True)
    amount_jpy = models.PositiveIntegerField(_("amount (JPY)"), default=0)
    # The amount a reviewer approved; kept when a recomputation moves amount_jpy (needs_rereview).
    approved_amount_jpy = models.PositiveIntegerField(_("approved amount (JPY)"), null=True, blank=True)
    official_submission = models.ForeignKey(
        Submission, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    payout_method = models.CharField(_("payout method"), max_length=32, choices=PayoutMethod.choices, blank=True)
    # Refunds: the refund request must reach the payment provider by the end of this JST day.
    provider_request_due_on = models.DateField(_("provider request due on"), null=True, blank=True)
    # What the customer is told beyond the amount (e.g. how to ask the app store for the refund).
    note = models.TextField(_("note"), blank=True)
    computed_at = models.DateTimeField(_("computed at"))
    prepared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    # md5 of the lines (claims.engine.staging.lines_hash_sql), kept by program_run so that a re-run compares
    # one column per claim instead of every line; blank = unknown (the next run rewrites the lines once).
    lines_hash = models.CharField(_("lines hash"), max_length=32, blank=True, default="", editable=False)
    # Drawn into the QA sample when bulk-approved (program.qa_sample_percent): a person re-checks it.
    qa_review = models.BooleanField(_("in QA sample"), default=False)

    class Meta:
        verbose_name = _("claim")
        verbose_name_plural = _("claims")
        permissions = [
            ("approve_claim", _("Can approve claims (first or second approval, bulk approval)")),
            ("reject_claim", _("Can reject claims")),
            ("request_info_claim", _("Can request information on claims")),
            ("reopen_claim", _("Can reopen claims for review")),
        ]
        constraints = [
            models.UniqueConstraint(fields=["program", "subject"], name="claim_program_subject_unique"),
        ]
        indexes = [
            models.Index(fields=["program", "status", "eligible"], name="claim_program_status_idx"),
            models.Index(fields=["customer"], name="claim_customer_idx"),
            models.Index(fields=["payee"], name="claim_payee_idx"),
            models.Index(fields=["official_submission"], name="claim_official_submission_idx"),
            # Partial: only claims awaiting review (a run inserts `computed` claims, which are not in it).
            models.Index(
                fields=["program", "status", "computed_at"],
                condition=models.Q(status__in=AWAITING_REVIEW_STATUSES),
                name="claim_awaiting_review_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.program_id}:{self.subject}"

    def can_submit_for_review(self) -> bool:
        return self.status in (ClaimStatus.COMPUTED, ClaimStatus.INFO_REQUESTED, ClaimStatus.NEEDS_REREVIEW)

    def can_request_info(self) -> bool:
        return self.status in (
            ClaimStatus.PENDING_REVIEW,
            ClaimStatus.NEEDS_REREVIEW,
            ClaimStatus.AWAITING_SECOND_APPROVAL,
        )

    def can_approve(self) -> bool:
        return self.eligible and self.status in (
            ClaimStatus.PENDING_REVIEW,
            ClaimStatus.NEEDS_REREVIEW,
            ClaimStatus.AWAITING_SECOND_APPROVAL,
        )

    def can_bulk_approve(self) -> bool:
        """Bulk approval: eligible, pending (first look) and in the program's lowest band."""
        return (
            self.eligible
            and self.status == ClaimStatus.PENDING_REVIEW
            and self.amount_jpy <= self.program.auto_approve_max_jpy
            and not self.needs_second_approval()
        )

    def can_reject(self) -> bool:
        return self.status in (
            ClaimStatus.PENDING_REVIEW,
            ClaimStatus.NEEDS_REREVIEW,
            ClaimStatus.INFO_REQUESTED,
            ClaimStatus.AWAITING_SECOND_APPROVAL,
        )

    def can_reopen(self) -> bool:
        return self.status in (ClaimStatus.INFO_REQUESTED, ClaimStatus.REJECTED)

    def needs_second_approval(self) -> bool:
        """Maker-checker: above the program's threshold two different people must approve."""
        threshold = self.program.second_approval_above_jpy
        return threshold is not None and self.amount_jpy > threshold

    def can_recompute_silently(self) -> bool:
        """Whether a recomputation may change the amount without sending the claim back to review."""
        return self.status not in ClaimStatus.decided()


class DecisionAction(models.TextChoices):
    APPROVE = "approve", _("Approve")
    BULK_APPROVE = "bulk_approve", _("Approve (bulk, lowest band)")
    REJECT = "reject", _("Reject")
    REQUEST_INFO = "request_info", _("Request information")
    REOPEN = "reopen", _("Reopen")

    @classmethod
    def decisions(cls) -> frozenset[str]:
        """Actions that decide a claim: whoever took one may not approve the claim afterwards."""
        return frozenset({cls.APPROVE, cls.BULK_APPROVE, cls.REJECT})


class RejectReason(models.TextChoices):
    NOT_ELIGIBLE = "not_eligible", _("Not eligible under the program's rules")
    DUPLICATE = "duplicate", _("Duplicate of another claim")
    INSUFFICIENT_EVIDENCE = "insufficient_evidence", _("Insufficient evidence")
    FRAUD_SUSPECTED = "fraud_suspected", _("Suspected fraud or stolen payment method")
    SPECIAL_CIRCUMSTANCES = "special_circumstances", _("Special circumstances (no refund)")
    APP_STORE = "app_store", _("App-store purchase: the customer asks the store")
    OTHER = "other", _("Other (see note)")


@decision_history()
class ClaimDecision(models.Model):
    """One review step on a claim, by one person; the history maker-checker is enforced against."""

    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="decisions")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(_("action"), max_length=16, choices=DecisionAction.choices)
    at = models.DateTimeField(_("at"))
    status_before = models.CharField(_("status before"), max_length=32, choices=ClaimStatus.choices)
    status_after = models.CharField(_("status after"), max_length=32, choices=ClaimStatus.choices)
    # The claim's amount when the step was taken (what the person saw).
    amount_jpy = models.PositiveIntegerField(_("amount (JPY)"))
    reason_code = models.CharField(_("reason code"), max_length=32, choices=RejectReason.choices, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("claim decision")
        verbose_name_plural = _("claim decisions")
        ordering = ["claim", "at", "id"]
        indexes = [models.Index(fields=["claim", "actor"], name="claim_decision_actor_idx")]

    def __str__(self) -> str:
        return f"{self.claim_id} {self.action} by {self.actor_id}"


@set_history()
class ClaimLine(models.Model):
    """One line of a claim's breakdown, naming the rule that produced it.

    `amount_jpy` is what is paid for the line; an excluded line (its grant key already compensated by
    another program) is kept with amount 0 and `excluded_reason` so the breakdown explains itself.
    """

    # No index of its own: claim_id is the prefix of the unique (claim, position) index.
    claim = models.ForeignKey(Claim, on_delete=models.CASCADE, related_name="lines", db_index=False)
    position = models.PositiveSmallIntegerField(_("position"))
    label = models.CharField(_("label"), max_length=200)
    amount_jpy = models.IntegerField(_("amount (JPY)"))
    rule = models.CharField(_("rule"), max_length=64)
    grant_key = models.CharField(_("grant key"), max_length=160, blank=True)
    excluded_reason = models.CharField(_("excluded because"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("claim line")
        verbose_name_plural = _("claim lines")
        ordering = ["claim", "position"]
        constraints = [
            models.UniqueConstraint(fields=["claim", "position"], name="claim_line_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.label}={self.amount_jpy}"


@set_history()
class Grant(models.Model):
    """ "This program compensates this thing": one row per grant key across ALL programs.

    The UNIQUE grant_key is what makes double compensation impossible, whatever the programs'
    configuration and however runs interleave: the second INSERT of a key loses in the database.
    Keys: `sub-month:<subscription_id>:<YYYY-MM>`, `charge:<charge_id>`, `coupon:<inquiry_number>`,
    `coupon-tx:<transaction_id>`.
    """

    # UNIQUE through Meta.constraints (one index; `unique=True` would add a second `_like` index).
    grant_key = models.CharField(_("grant key"), max_length=160)
    # No index of its own: program_id is the prefix of grant_program_subject_idx.
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="grants", db_index=False)
    # The claim is (program, subject); kept as the subject so a grant can be taken before the claim row exists.
    subject = models.CharField(_("subject"), max_length=ID_LENGTH)
    amount_jpy = models.IntegerField(_("amount (JPY)"))
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("grant")
        verbose_name_plural = _("grants")
        constraints = [models.UniqueConstraint(fields=["grant_key"], name="grant_key_unique")]
        indexes = [models.Index(fields=["program", "subject"], name="grant_program_subject_idx")]

    def __str__(self) -> str:
        return self.grant_key


@decision_history()
class CouponPaymentConfirmation(models.Model):
    """An agent's record that the store confirmed a class-B1 payment (paid cash, coupon charged too)."""

    transaction = models.OneToOneField(
        "customers.CouponTransaction", on_delete=models.PROTECT, related_name="store_confirmation"
    )
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    confirmed_at = models.DateTimeField(_("confirmed at"))
    store_contact = models.CharField(_("store contact"), max_length=200, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("store confirmation of a coupon payment")
        verbose_name_plural = _("store confirmations of coupon payments")

    def __str__(self) -> str:
        return str(self.transaction_id)


class DuplicatePaymentStatus(models.TextChoices):
    PENDING = "pending", _("To confirm")
    CONFIRMED = "confirmed", _("Confirmed duplicate (restored)")
    REJECTED = "rejected", _("Rejected (a genuine payment: not restored)")


@decision_history()
class CouponDuplicatePayment(models.Model):
    """A class-B2 payment found by the detection (claims.remedies.coupon_duplicates_detect), for an agent.

    Same coupon, same store, same amount, within the program's `duplicate_interval_seconds` of the
    previous payment (`previous_payment`), in the outage window. The engine restores it unless an agent
    rejected it (checked against the store's records: a genuine second purchase); confirming records
    the agent's check. One row per payment: detection is idempotent.
    """

    transaction = models.OneToOneField(
        "customers.CouponTransaction", on_delete=models.PROTECT, related_name="duplicate_check"
    )
    previous_payment = models.ForeignKey(
        "customers.CouponTransaction", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+", db_index=False)
    coupon = models.ForeignKey("customers.Coupon", on_delete=models.PROTECT, related_name="+", db_index=False)
    amount_jpy = models.PositiveIntegerField(_("amount (JPY)"))
    status = models.CharField(
        _("status"), max_length=16, choices=DuplicatePaymentStatus.choices, default=DuplicatePaymentStatus.PENDING
    )
    detected_at = models.DateTimeField(_("detected at"))
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("duplicate coupon payment")
        verbose_name_plural = _("duplicate coupon payments to confirm")
        permissions = [
            ("confirm_couponduplicatepayment", _("Can confirm or reject detected duplicate coupon payments")),
        ]
        indexes = [models.Index(fields=["status", "coupon"], name="coupon_dup_status_idx")]

    def __str__(self) -> str:
        return str(self.transaction_id)

    def can_decide(self) -> bool:
        return self.status == DuplicatePaymentStatus.PENDING


class CouponRemedyKind(models.TextChoices):
    RESTORATION = "restoration", _("Payment restored to the balance")
    EXPIRY_EXTENSION = "expiry_extension", _("Expiry extended")


@decision_history()
class CouponRemedy(models.Model):
    """A remedy of an approved coupon-outage claim, written to the coupon ledger (`ledger_entry`).

    The idempotency keys are database constraints: a payment has at most one live restoration, whatever
    the claim or program (`coupon_remedy_restored_once`); a claim has at most one live extension of its
    coupon's expiry (`coupon_remedy_extended_once`). A reversed remedy stays, with its reversing ledger
    row. Who applied and who reversed it, and when, are on the row and in its audit history.
    """

    claim = models.ForeignKey(Claim, on_delete=models.PROTECT, related_name="coupon_remedies")
    kind = models.CharField(_("kind"), max_length=16, choices=CouponRemedyKind.choices)
    coupon = models.ForeignKey("customers.Coupon", on_delete=models.PROTECT, related_name="+", db_index=False)
    # restoration: the erroneous payment given back (its `coupon-restore` line's key coupon-tx:<id>).
    restored_payment = models.ForeignKey(
        "customers.CouponTransaction", on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    ledger_entry = models.OneToOneField("customers.CouponTransaction", on_delete=models.PROTECT, related_name="remedy")
    amount_jpy = models.PositiveIntegerField(_("amount (JPY)"))
    applied_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    applied_at = models.DateTimeField(_("applied at"))
    # Set when the remedy is taken back (the claim was rejected after all, or a re-approval no longer
    # restores that payment): the reversing ledger row, who and when. Only live remedies count as "once".
    reversal_entry = models.OneToOneField(
        "customers.CouponTransaction",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversed_remedy",
        verbose_name=_("reversal ledger entry"),
    )
    reversed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    reversed_at = models.DateTimeField(_("reversed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("coupon remedy")
        verbose_name_plural = _("coupon remedies")
        constraints = [
            models.UniqueConstraint(
                fields=["restored_payment"],
                condition=models.Q(kind="restoration", reversed_at__isnull=True),
                name="coupon_remedy_restored_once",
            ),
            models.UniqueConstraint(
                fields=["claim", "coupon"],
                condition=models.Q(kind="expiry_extension", reversed_at__isnull=True),
                name="coupon_remedy_extended_once",
            ),
            models.CheckConstraint(
                condition=models.Q(reversed_at__isnull=True, reversed_by__isnull=True, reversal_entry__isnull=True)
                | models.Q(reversed_at__isnull=False, reversed_by__isnull=False, reversal_entry__isnull=False),
                name="coupon_remedy_reversal_complete",
            ),
            models.CheckConstraint(
                condition=models.Q(kind="expiry_extension", restored_payment__isnull=True)
                | models.Q(kind="restoration", restored_payment__isnull=False),
                name="coupon_remedy_kind_payment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.claim_id} {self.kind} {self.ledger_entry_id}"


class MergeOutcome(models.TextChoices):
    """autorenew-60day, reason duplicate_purchase: what became of the agent's merge offer (SPEC)."""

    REFUNDED = "refunded", _("Refunded (the customer wanted the refund)")
    MERGED = "merged", _("Merged (remaining days added to the other licence, no refund)")
    DECLINED = "declined", _("Declined (the customer kept both licences and withdrew the request)")


@decision_history()
class MergeOffer(models.Model):
    """The merge offer made on an autorenew-60day duplicate-purchase claim, and its outcome.

    `merged`: the renewed licence's remaining days (`days_added`) were added to `other_subscription`'s
    end instead of refunding; `merged` and `declined` claims pay nothing (the engine reads this table).
    """

    claim = models.OneToOneField(Claim, on_delete=models.PROTECT, related_name="merge_offer")
    outcome = models.CharField(_("outcome"), max_length=16, choices=MergeOutcome.choices)
    other_subscription = models.ForeignKey(
        "customers.Subscription", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    days_added = models.PositiveIntegerField(_("days added"), default=0)
    note = models.TextField(_("note"), blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    recorded_at = models.DateTimeField(_("recorded at"))

    class Meta:
        verbose_name = _("merge offer")
        verbose_name_plural = _("merge offers")
        permissions = [
            ("record_merge_offer", _("Can record the outcome of a merge offer (autorenew-60day)")),
        ]

    def __str__(self) -> str:
        return f"{self.claim_id} {self.outcome}"


class ProgramRun(models.Model):
    """Progress of one eligibility run, for the admin (not a money row: no audit history)."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    total = models.PositiveIntegerField(_("subjects"), default=0)
    processed = models.PositiveIntegerField(_("processed"), default=0)
    created = models.PositiveIntegerField(_("claims created"), default=0)
    updated = models.PositiveIntegerField(_("claims updated"), default=0)
    sent_to_rereview = models.PositiveIntegerField(_("sent to re-review"), default=0)
    # No input had changed since the program's last full run: nothing was recomputed (claims.inputs).
    inputs_unchanged = models.BooleanField(_("inputs unchanged"), default=False)
    queued_at = models.DateTimeField(_("queued at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("program run")
        verbose_name_plural = _("program runs")
        ordering = ["-queued_at"]

    def __str__(self) -> str:
        return f"{self.program_id} run {self.pk} ({self.status})"


class InputChange(models.Model):
    """One statement that wrote an input table of the claims engine (claims.inputs), by its trigger.

    Written only by the statement-level triggers of migration 0015, never by Django code.
    """

    table_name = models.CharField(_("table"), max_length=63)
    transaction_id = models.BigIntegerField(_("transaction id"), db_index=True)
    changed_at = models.DateTimeField(_("changed at"))

    class Meta:
        verbose_name = _("input change")
        verbose_name_plural = _("input changes")

    def __str__(self) -> str:
        return f"{self.table_name} in transaction {self.transaction_id}"


class InputChangeKey(models.Model):
    """A subject key one change statement touched (claims.inputs): written by the input triggers only.

    `kind`: `c` a customer id, `b` a subscription, `s` a subject (submission, claim, grant), `p` a coupon
    (inquiry number), `t` a coupon transaction, `r` a program's own row (that program recomputes in full),
    `*` everything (a write whose effect on subjects is not traced: plans, a program's slug, TRUNCATE).
    """

    pk = models.CompositePrimaryKey("change_id", "kind", "key")
    change_id = models.BigIntegerField(_("change"))
    kind = models.CharField(_("kind"), max_length=1)
    key = models.TextField(_("key"))

    class Meta:
        verbose_name = _("input change key")
        verbose_name_plural = _("input change keys")

    def __str__(self) -> str:
        return f"{self.kind}:{self.key} (change {self.change_id})"


class SubjectRecheck(models.Model):
    """A subject whose answer changes with the day of the run: recomputed by the first run on or after
    `recheck_on` (JST date), whatever changed (claims.inputs; e.g. overpayment's provider due date)."""

    pk = models.CompositePrimaryKey("program_id", "subject")
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(_("subject"), max_length=ID_LENGTH)
    recheck_on = models.DateField(_("recheck on"))

    class Meta:
        verbose_name = _("subject recheck")
        verbose_name_plural = _("subject rechecks")

    def __str__(self) -> str:
        return f"{self.subject} on {self.recheck_on}"


class ProgramComputation(models.Model):
    """What a program's last full run read: the snapshot it started from and its own transaction."""

    program = models.OneToOneField(Program, on_delete=models.CASCADE, primary_key=True, related_name="computation")
    snapshot = models.TextField(_("snapshot"))
    transaction_id = models.BigIntegerField(_("transaction id"))
    # The run's own last change row: the same transaction's later writes are changes (a test, a caller
    # running the program inside a larger transaction).
    last_change_id = models.BigIntegerField(_("last change of the run"))
    engine_revision = models.CharField(_("engine revision"), max_length=64)
    # PostgreSQL's system identifier ('' where the host does not let us read it): snapshots and
    # transaction ids mean something only in the cluster that issued them.
    cluster = models.CharField(_("database cluster"), max_length=32, blank=True)
    computed_at = models.DateTimeField(_("computed at"))
    # The business calendar the run used (refund policies: due dates), and the JST date of its `as_of`:
    # another calendar, or a run dated earlier, computes in full.
    calendar_revision = models.CharField(_("calendar revision"), max_length=64, blank=True)
    as_of_date = models.DateField(_("as-of date"), null=True)

    class Meta:
        verbose_name = _("program computation")
        verbose_name_plural = _("program computations")

    def __str__(self) -> str:
        return f"{self.program_id} computed at {self.computed_at:%Y-%m-%d %H:%M}"
