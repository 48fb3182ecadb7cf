"""The permission walk: every registered admin page, custom admin URL and action, as every role.

`RULES` says which permission opens each page and action; the roles' grants come from
`support_portal/core/roles.py` (ROLE_PERMISSIONS), so the walk checks that the server enforces the matrix.
A registered ModelAdmin, custom admin URL or action WITHOUT a row here fails the walk
("new admin page without a rule"): add its row when you add the page.

How to add a row:
- a read-only table: `"app.model": read_only("app.view_model")`;
- an editable table: `"app.model": editable("app", "model", delete=False)` (add/change/view by the
  model's own permissions);
- anything else: `Rule(changelist=..., add=..., change=..., delete=..., actions={...})`, where each value
  is the "app.codename" that opens it, or NOBODY (refused to every role; superusers only);
- a custom URL (from get_urls()): `CUSTOM_URL_RULES["admin:<url name>"] = (kwargs, "app.codename")`.

"view_x" is satisfied by "change_x" too (Django's has_view_permission). Object-level rules (agents see
only their queues' tickets, only finance sees payout secrets) are tested next to those apps.
"""

from dataclasses import dataclass, field

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import Client, RequestFactory
from django.urls import reverse

from claims.models import ClaimDecision, ClaimStatus
from support_portal.core.roles import ROLE_PERMISSIONS
from tests.claims.factories import ClaimFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

NOBODY = None
ROLES = ["agent", "reviewer", "manager", "finance", "staff_without_group"]
# A primary key no row has: the change/delete pages answer "refused" (403) or, when allowed, "no such
# object" (302 to the index) without any data.
MISSING_PK = "987654321"


@dataclass(frozen=True)
class Rule:
    changelist: str | None
    add: str | None
    change: str | None
    delete: str | None = NOBODY
    actions: dict[str, str | None] = field(default_factory=dict)

    def all_actions(self) -> dict[str, str | None]:
        """Django's site-wide "delete selected" needs the delete permission unless a row says otherwise."""
        return {"delete_selected": self.delete, **self.actions}


def read_only(view_permission: str, **actions: str | None) -> Rule:
    return Rule(changelist=view_permission, add=NOBODY, change=view_permission, delete=NOBODY, actions=actions)


def editable(app: str, model: str, *, delete: bool = False, **actions: str | None) -> Rule:
    delete_permission = f"{app}.delete_{model}" if delete else NOBODY
    actions = {**({"delete_selected": delete_permission} if delete else {}), **actions}
    return Rule(
        changelist=f"{app}.view_{model}",
        add=f"{app}.add_{model}",
        change=f"{app}.view_{model}",
        delete=delete_permission,
        actions=actions,
    )


def superuser_only() -> Rule:
    """Tables no role holds any permission on (users, groups, raw events): superusers only."""
    return Rule(changelist=NOBODY, add=NOBODY, change=NOBODY, delete=NOBODY, actions={"delete_selected": NOBODY})


RULES: dict[str, Rule] = {
    # Django and libraries
    "auth.user": superuser_only(),
    "auth.group": superuser_only(),
    "pghistory.events": superuser_only(),
    "django_celery_beat.periodictask": Rule(
        changelist="django_celery_beat.view_periodictask",
        # A new periodic task decides what runs: superusers only (support_portal/core/admin.py).
        add=NOBODY,
        change="django_celery_beat.view_periodictask",
        actions={
            # The library's actions declare no permissions (anyone who sees the list could run them):
            # the rule is that only roles that may change tasks see the list at all.
            "enable_tasks": "django_celery_beat.change_periodictask",
            "disable_tasks": "django_celery_beat.change_periodictask",
            "toggle_tasks": "django_celery_beat.change_periodictask",
            # Running a task by hand bypasses the permission of the screen that would start it (a
            # manager could build a payout batch): superusers only (support_portal/core/admin.py).
            "run_tasks": NOBODY,
            "delete_selected": NOBODY,
        },
    ),
    "django_celery_beat.crontabschedule": editable("django_celery_beat", "crontabschedule"),
    "django_celery_beat.intervalschedule": editable("django_celery_beat", "intervalschedule"),
    "django_celery_beat.clockedschedule": editable("django_celery_beat", "clockedschedule"),
    "django_celery_beat.solarschedule": editable("django_celery_beat", "solarschedule"),
    # Operations
    "core.closedday": editable("core", "closedday", delete=True),
    "core.importrun": read_only("core.view_importrun"),
    # Its changelist redirects to the Operations health page; the samples themselves are not edited.
    "core.backlogsample": read_only("core.view_operations_health"),
    "core.sweeprun": read_only("core.view_sweeprun"),
    # Created through the add page (the key shown once), revoked by an action; never changed or deleted.
    "api.apikey": Rule(
        changelist="api.view_apikey",
        add="api.add_apikey",
        change="api.view_apikey",
        delete=NOBODY,
        actions={"revoke": "api.revoke_apikey"},
    ),
    "core.workerheartbeat": read_only("core.view_workerheartbeat"),
    # Customers (source data: read-only for every role)
    **{
        f"customers.{model}": read_only(f"customers.view_{model}")
        for model in [
            "customer",
            "plan",
            "subscription",
            "charge",
            "login",
            "usageevent",
            "coupon",
            "coupontransaction",
        ]
    },
    # Claims
    "claims.program": Rule(
        changelist="claims.view_program",
        add="claims.add_program",
        change="claims.view_program",
        actions={
            "preview_csv": "claims.run_program",
            "run_programs": "claims.run_program",
            "move_to_preview": "claims.change_program",
            "open_for_applications": "claims.change_program",
            "close_applications": "claims.change_program",
            "submit_for_review": "claims.run_program",
            "detect_coupon_duplicates": "claims.run_program",
        },
    ),
    "claims.claim": read_only(
        "claims.view_claim",
        approve_claims="claims.approve_claim",
        bulk_approve_claims="claims.approve_claim",
        reject_claims="claims.reject_claim",
        request_info_claims="claims.request_info_claim",
        reopen_claims="claims.reopen_claim",
        approve_and_pay_claims="claims.approve_claim",
        apply_coupon_remedies="claims.approve_claim",
    ),
    "claims.grant": read_only("claims.view_grant"),
    "claims.submission": editable("claims", "submission"),
    "claims.couponpaymentconfirmation": editable("claims", "couponpaymentconfirmation"),
    "claims.mergeoffer": read_only("claims.view_mergeoffer"),
    "claims.couponduplicatepayment": read_only(
        "claims.view_couponduplicatepayment",
        confirm_duplicates="claims.confirm_couponduplicatepayment",
        reject_duplicates="claims.confirm_couponduplicatepayment",
    ),
    "claims.couponremedy": read_only("claims.view_couponremedy"),
    # Payouts
    "payouts.payout": read_only("payouts.view_payout"),
    "payouts.payoutbatch": Rule(
        changelist="payouts.view_payoutbatch",
        add=NOBODY,
        change="payouts.view_payoutbatch",
        actions={
            "start_batches": "payouts.start_payoutbatch",
            "pause_batches": "payouts.pause_payoutbatch",
            "cancel_batches": "payouts.cancel_payoutbatch",
        },
    ),
    "payouts.payoutnotice": read_only(
        "payouts.view_payoutnotice",
        resend_notices="payouts.resend_payoutnotice",
        resolve_delivered="payouts.resolve_payoutnotice",
        resolve_not_delivered="payouts.resolve_payoutnotice",
    ),
    "payouts.payoutsecretreveal": read_only("payouts.view_payoutsecretreveal"),
    "payouts.programpayoutpolicy": editable("payouts", "programpayoutpolicy"),
    # Bank transfers, refunds and settlement files (finance; agents record a caller's account)
    **{
        f"banking.{model}": read_only(f"banking.view_{model}")
        for model in [
            "bankaccount",
            "bankingevent",
            "bankresultimport",
            "refundrequest",
            "settlementimport",
            "zenginexport",
            "zenginexportline",
        ]
    },
    # Support desk (agents work tickets; managers also configure queues and canned replies)
    "tickets.ticket": Rule(
        changelist="tickets.view_ticket",
        add="tickets.add_ticket",
        change="tickets.view_ticket",
        actions={
            **{
                action: "tickets.change_ticket"
                for action in (
                    "assign_to",
                    "assign_to_me",
                    "unassign",
                    "mark_open",
                    "mark_pending",
                    "mark_resolved",
                    "close_tickets",
                )
            },
            "merge_tickets": "tickets.merge_ticket",
        },
    ),
    "tickets.queue": editable("tickets", "queue"),
    "tickets.cannedreply": editable("tickets", "cannedreply"),
    "tickets.savedfilter": editable("tickets", "savedfilter"),
    # Identity recovery
    "identity.identityrecoverycase": Rule(
        changelist="identity.view_identityrecoverycase",
        add="identity.add_identityrecoverycase",
        change="identity.view_identityrecoverycase",
    ),
    # Security
    "accounts.securityevent": read_only("accounts.view_securityevent"),
    "accounts.exportrecord": read_only("accounts.view_exportrecord"),
}

# Custom admin URLs (ModelAdmin.get_urls()): URL name → (kwargs, the permission that opens it).
CUSTOM_URL_RULES: dict[str, tuple[dict[str, object], str | tuple[str, ...] | None]] = {
    "admin:core_importrun_upload": ({}, "core.add_importrun"),
    "admin:core_operations_health": ({}, "core.view_operations_health"),
    "admin:accounts_securityevent_audit_trail": ({}, "accounts.view_audit_trail"),
    "admin:claims_program_report": ({"program_id": int(MISSING_PK)}, ("claims.view_program", "claims.view_claim")),
    "admin:claims_program_report_csv": (
        {"program_id": int(MISSING_PK)},
        ("claims.view_program", "claims.view_claim"),
    ),
    "admin:claims_claim_merge_offer": (
        {"claim_id": int(MISSING_PK)},
        ("claims.record_merge_offer", "claims.view_claim"),
    ),
    "admin:payouts_payout_reveal": ({"pk": int(MISSING_PK)}, "payouts.reveal_payout_secret"),
    "admin:payouts_payoutbatch_build": ({}, "payouts.start_payoutbatch"),
    "admin:payouts_payoutbatch_progress": ({"pk": int(MISSING_PK)}, "payouts.view_payoutbatch"),
    "admin:payouts_payoutbatch_progress_json": ({"pk": int(MISSING_PK)}, "payouts.view_payoutbatch"),
    "admin:payouts_payoutbatch_control": ({"pk": int(MISSING_PK)}, "payouts.view_payoutbatch"),
    "admin:payouts_payoutnotice_templates": ({}, "payouts.view_payoutnotice"),
    "admin:banking_bankaccount_record": ({}, "banking.add_bankaccount"),
    "admin:banking_zenginexport_create": ({}, "banking.export_zengin"),
    "admin:banking_zenginexport_download": ({"pk": int(MISSING_PK)}, "banking.export_zengin"),
    "admin:banking_zenginexport_import_result": ({}, "banking.import_bank_results"),
    "admin:banking_zenginexport_import_settlement": ({}, "banking.import_settlement"),
    "admin:banking_zenginexport_report": ({}, "banking.view_finance_report"),
    "admin:banking_zenginexport_report_csv": ({}, "banking.view_finance_report"),
    "admin:tickets_ticket_dashboard": ({}, "tickets.view_dashboard"),
    "admin:tickets_ticket_dashboard_csv": ({}, "tickets.view_dashboard"),
    "admin:tickets_ticket_assign": ({}, "tickets.change_ticket"),
    "admin:tickets_ticket_merge": ({}, "tickets.merge_ticket"),
    "admin:tickets_ticket_save_filter": ({}, "tickets.add_savedfilter"),
    "admin:tickets_ticket_reply": ({"pk": int(MISSING_PK)}, "tickets.add_ticketmessage"),
    "admin:tickets_ticket_link_claim": ({"pk": int(MISSING_PK)}, "tickets.add_ticketclaim"),
    "admin:tickets_ticket_record_request": ({"pk": int(MISSING_PK)}, "claims.add_submission"),
    "admin:identity_identityrecoverycase_verify": ({"pk": int(MISSING_PK)}, "identity.add_identityrecoverycase"),
    "admin:identity_identityrecoverycase_unlock": ({"pk": int(MISSING_PK)}, "identity.unlock_identityrecoverycase"),
}

_STANDARD_SUFFIXES = ("_changelist", "_add", "_change", "_delete", "_history", "_autocomplete")


def _role_allows(role: str, permission: str | tuple[str, ...] | None) -> bool:
    """Whether the role's grants satisfy `permission` (a tuple: every one of them)."""
    if permission is None:
        return False
    if isinstance(permission, tuple):
        return all(_role_allows(role, one) for one in permission)
    granted = ROLE_PERMISSIONS.get(role, set())
    if permission in granted:
        return True
    app, _, codename = permission.partition(".")
    return codename.startswith("view_") and f"{app}.change_{codename[len('view_') :]}" in granted


def _registered() -> list[tuple[str, admin.ModelAdmin]]:
    return sorted(
        ((model._meta.label_lower, model_admin) for model, model_admin in admin.site._registry.items()),
        key=lambda pair: pair[0],
    )


def _custom_url_names() -> list[str]:
    return sorted(
        f"admin:{pattern.name}"
        for _label, model_admin in _registered()
        for pattern in model_admin.get_urls()
        if pattern.name and not pattern.name.endswith(_STANDARD_SUFFIXES)
    )


@pytest.fixture
def staff() -> dict[str, User]:
    users = {}
    for role in ROLES:
        user = UserFactory.create(username=f"walk-{role}", is_staff=True)
        if role in ROLE_PERMISSIONS:
            user.groups.set([Group.objects.get(name=role)])
        users[role] = user
    return users


def test_every_admin_page_url_and_action_has_a_rule():
    superuser = User(username="root", is_staff=True, is_superuser=True, is_active=True)
    request = RequestFactory().get("/admin/")
    request.user = superuser
    missing = []
    for label, model_admin in _registered():
        rule = RULES.get(label)
        if rule is None:
            missing.append(f"new admin page without a rule: {label} ({type(model_admin).__name__})")
            continue
        for action in model_admin.get_actions(request):
            if action not in rule.all_actions():
                missing.append(f"new admin action without a rule: {label} → {action}")
    missing += [
        f"new custom admin URL without a rule: {name}" for name in _custom_url_names() if name not in CUSTOM_URL_RULES
    ]
    assert missing == []


def _refused(response, client_kind: str = "staff") -> bool:
    return response.status_code == 403 or (
        response.status_code == 302 and reverse("admin:login") in response["Location"]
    )


@pytest.mark.parametrize("label", sorted(RULES))
def test_model_admin_pages_and_actions_per_role(label, staff):
    model_admin = next((ma for lbl, ma in _registered() if lbl == label), None)
    assert model_admin is not None, f"{label} has a rule but no registered admin: remove the stale rule"
    rule = RULES[label]
    opts = model_admin.opts
    base = f"admin:{opts.app_label}_{opts.model_name}"
    pages = {
        "changelist": (reverse(f"{base}_changelist"), rule.changelist, {200}),
        "add": (reverse(f"{base}_add"), rule.add, {200}),
        # a missing object: "no such object" (302 to the index, or a 404 from a custom change view)
        "change": (reverse(f"{base}_change", args=[MISSING_PK]), rule.change, {302, 404}),
        "delete": (reverse(f"{base}_delete", args=[MISSING_PK]), rule.delete, {302, 404}),
    }
    mismatches = []
    for role, user in staff.items():
        client = Client()
        client.force_login(user)
        for page, (url, permission, allowed_status) in pages.items():
            response = client.get(url)
            expected_allowed = _role_allows(role, permission)
            got = "refused" if _refused(response) else f"allowed ({response.status_code})"
            if expected_allowed and (_refused(response) or response.status_code not in allowed_status):
                mismatches.append(f"{role} {page} {url}: expected allowed ({allowed_status}), got {got}")
            if not expected_allowed and not _refused(response):
                mismatches.append(f"{role} {page} {url}: expected refused, got {got}")
        # Actions: the server offers (and accepts in a POST) only what get_actions() returns for the user.
        request = RequestFactory().get(reverse(f"{base}_changelist"))
        request.user = user
        offered = set(model_admin.get_actions(request)) if _role_allows(role, rule.changelist) else set()
        expected = {action for action, permission in rule.all_actions().items() if _role_allows(role, permission)}
        if offered != expected:
            mismatches.append(f"{role} actions: offered {sorted(offered)}, expected {sorted(expected)}")
    assert mismatches == []


@pytest.mark.parametrize("name", sorted(CUSTOM_URL_RULES))
def test_custom_admin_urls_per_role(name, staff):
    kwargs, permission = CUSTOM_URL_RULES[name]
    assert name in _custom_url_names(), f"{name} has a rule but no such admin URL: remove the stale rule"
    url = reverse(name, kwargs=kwargs)
    mismatches = []
    for role, user in staff.items():
        client = Client()
        client.force_login(user)
        response = client.get(url)
        if _role_allows(role, permission) == _refused(response):
            mismatches.append(
                f"{role} {url}: expected {'allowed' if _role_allows(role, permission) else 'refused'}, "
                f"got {response.status_code}"
            )
    # Anonymous visitors are sent to sign in.
    anonymous = Client().get(url)
    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith(reverse("admin:login"))
    assert mismatches == []


def test_refused_action_post_changes_nothing(staff):
    # Given a claim waiting for review and an agent (may view claims, may not approve them)
    claim = ClaimFactory.create()
    client = Client()
    client.force_login(staff["agent"])

    # When the agent posts the approve action by hand
    response = client.post(
        reverse("admin:claims_claim_changelist"), {"action": "approve_claims", "_selected_action": [str(claim.pk)]}
    )

    # Then the action is not run (the form refuses an action it does not offer) and nothing is decided
    assert response.status_code in (200, 302)
    claim.refresh_from_db()
    assert claim.status == ClaimStatus.PENDING_REVIEW
    assert not ClaimDecision.objects.exists()


def test_anonymous_is_sent_to_sign_in_everywhere():
    client = Client()
    for label, model_admin in _registered():
        opts = model_admin.opts
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = client.get(url)
        assert response.status_code == 302, label
        assert response["Location"].startswith(reverse("admin:login")), label
