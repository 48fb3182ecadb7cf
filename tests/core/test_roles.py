"""Role groups: the permission matrix pinned literally, the sync, and the data migration."""

import importlib

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext

from support_portal.core import roles
from support_portal.core.roles import roles_sync

pytestmark = pytest.mark.django_db

CUSTOMER_VIEWS = {
    "customers.view_customer",
    "customers.view_plan",
    "customers.view_subscription",
    "customers.view_charge",
    "customers.view_login",
    "customers.view_usageevent",
    "customers.view_coupon",
    "customers.view_coupontransaction",
}

# Written out by hand on purpose: a change to ROLE_PERMISSIONS must be made here too, deliberately.
EXPECTED_ROLES: dict[str, set[str]] = {
    "agent": CUSTOMER_VIEWS
    | {
        "claims.view_submission",
        "claims.add_submission",
        "claims.view_claim",
        "claims.view_claimline",
        "claims.view_couponpaymentconfirmation",
        "claims.add_couponpaymentconfirmation",
        "claims.view_couponduplicatepayment",
        "claims.confirm_couponduplicatepayment",
        "claims.view_couponremedy",
        "claims.view_mergeoffer",
        "claims.record_merge_offer",
        "tickets.view_ticket",
        "tickets.add_ticket",
        "tickets.change_ticket",
        "tickets.merge_ticket",
        "tickets.view_ticketmessage",
        "tickets.add_ticketmessage",
        "tickets.view_ticketevent",
        "tickets.view_ticketclaim",
        "tickets.add_ticketclaim",
        "tickets.view_queue",
        "tickets.view_cannedreply",
        "tickets.view_savedfilter",
        "tickets.add_savedfilter",
        "tickets.change_savedfilter",
        "identity.view_identityrecoverycase",
        "identity.add_identityrecoverycase",
        "identity.view_identityverificationattempt",
        "identity.view_identityrecoveryevent",
        "banking.view_bankaccount",
        "banking.add_bankaccount",
    },
    "reviewer": CUSTOMER_VIEWS
    | {
        "claims.view_program",
        "claims.view_submission",
        "claims.view_claim",
        "claims.view_claimline",
        "claims.view_grant",
        "claims.view_couponpaymentconfirmation",
        "claims.approve_claim",
        "claims.reject_claim",
        "claims.request_info_claim",
        "claims.reopen_claim",
        "claims.view_claimdecision",
        "claims.view_couponduplicatepayment",
        "claims.view_couponremedy",
        "claims.view_mergeoffer",
        "claims.record_merge_offer",
    },
    "manager": CUSTOMER_VIEWS
    | {
        "claims.view_program",
        "claims.add_program",
        "claims.change_program",
        "claims.run_program",
        "claims.view_programrun",
        "claims.view_submission",
        "claims.view_claim",
        "claims.view_claimline",
        "claims.view_grant",
        "claims.approve_claim",
        "claims.view_claimdecision",
        "core.view_importrun",
        "core.add_importrun",
        "core.view_closedday",
        "core.add_closedday",
        "core.change_closedday",
        "core.delete_closedday",
        "core.view_workerheartbeat",
        "core.view_operations_health",
        "core.view_sweeprun",
        "django_celery_beat.view_periodictask",
        "django_celery_beat.change_periodictask",
        "django_celery_beat.view_crontabschedule",
        "django_celery_beat.add_crontabschedule",
        "django_celery_beat.change_crontabschedule",
        "django_celery_beat.view_intervalschedule",
        "django_celery_beat.add_intervalschedule",
        "django_celery_beat.change_intervalschedule",
        "payouts.view_programpayoutpolicy",
        "payouts.add_programpayoutpolicy",
        "payouts.change_programpayoutpolicy",
        "payouts.view_payoutnotice",
        "accounts.view_audit_trail",
        "accounts.view_securityevent",
        "accounts.view_exportrecord",
        "api.view_apikey",
        "api.add_apikey",
        "api.revoke_apikey",
        "tickets.view_ticket",
        "tickets.add_ticket",
        "tickets.change_ticket",
        "tickets.merge_ticket",
        "tickets.view_ticketmessage",
        "tickets.add_ticketmessage",
        "tickets.view_ticketevent",
        "tickets.view_ticketclaim",
        "tickets.add_ticketclaim",
        "tickets.view_queue",
        "tickets.view_cannedreply",
        "tickets.view_savedfilter",
        "tickets.add_savedfilter",
        "tickets.change_savedfilter",
        "tickets.view_all_queues",
        "tickets.view_dashboard",
        "tickets.add_queue",
        "tickets.change_queue",
        "tickets.view_queuesurge",
        "tickets.add_queuesurge",
        "tickets.change_queuesurge",
        "tickets.add_cannedreply",
        "tickets.change_cannedreply",
        "identity.view_identityrecoverycase",
        "identity.add_identityrecoverycase",
        "identity.view_identityverificationattempt",
        "identity.view_identityrecoveryevent",
        "identity.unlock_identityrecoverycase",
        "identity.view_unmasked_contact",
    },
    "finance": {
        "customers.view_customer",
        "customers.view_plan",
        "customers.view_subscription",
        "customers.view_charge",
        "claims.view_program",
        "claims.view_submission",
        "claims.view_claim",
        "claims.view_claimline",
        "payouts.view_payout",
        "payouts.view_payouttransition",
        "payouts.view_payoutbatch",
        "payouts.view_payoutbatchtransition",
        "payouts.start_payoutbatch",
        "payouts.pause_payoutbatch",
        "payouts.cancel_payoutbatch",
        "payouts.view_payoutnotice",
        "payouts.resend_payoutnotice",
        "payouts.resolve_payoutnotice",
        "payouts.view_payoutnoticeattempt",
        "payouts.view_payoutnoticetransition",
        "payouts.reveal_payout_secret",
        "payouts.view_payoutsecretreveal",
        "payouts.view_programpayoutpolicy",
        "banking.view_bankaccount",
        "banking.view_zenginexport",
        "banking.view_zenginexportline",
        "banking.view_zenginexportdownload",
        "banking.export_zengin",
        "banking.import_bank_results",
        "banking.import_settlement",
        "banking.view_finance_report",
        "banking.view_bankresultimport",
        "banking.view_settlementimport",
        "banking.view_refundrequest",
        "banking.view_bankingevent",
    },
}

MONEY_AND_SOURCE_DATA_APPS = {"customers", "claims", "payouts", "banking"}


def group_permissions(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {f"{app_label}.{codename}" for app_label, codename in _permission_keys(group)}


def _permission_keys(group: Group) -> list[tuple[str, str]]:
    return list(group.permissions.values_list("content_type__app_label", "codename"))


def roles_snapshot() -> dict[str, object]:
    return {
        "groups": sorted(Group.objects.values_list("pk", "name")),
        "grants": sorted(Group.permissions.through.objects.values_list("group_id", "permission_id")),
        "permissions": sorted(Permission.objects.values_list("pk", "content_type_id", "codename")),
    }


@pytest.mark.parametrize("role", sorted(EXPECTED_ROLES))
def test_each_role_holds_exactly_its_permissions(role: str) -> None:
    roles_sync()
    assert group_permissions(role) == EXPECTED_ROLES[role]


def test_the_matrix_has_exactly_the_four_roles() -> None:
    roles_sync()
    assert set(Group.objects.values_list("name", flat=True)) >= set(EXPECTED_ROLES)
    assert set(roles.ROLE_PERMISSIONS) == set(EXPECTED_ROLES)


def test_nobody_may_delete_money_or_source_data_rows() -> None:
    roles_sync()
    deletes = {
        (group.name, f"{app_label}.{codename}")
        for group in Group.objects.filter(name__in=EXPECTED_ROLES)
        for app_label, codename in _permission_keys(group)
        if codename.startswith("delete_")
    }
    assert not {grant for grant in deletes if grant[1].split(".")[0] in MONEY_AND_SOURCE_DATA_APPS}
    # The only delete anyone has: a manager removing a company closed day (configuration).
    assert deletes == {("manager", "core.delete_closedday")}


def test_running_roles_sync_again_changes_nothing() -> None:
    roles_sync()
    after_first = roles_snapshot()
    with CaptureQueriesContext(connection) as queries:
        roles_sync()
    assert roles_snapshot() == after_first
    writes = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []


def test_sync_removes_extra_permissions_and_leaves_other_groups_alone() -> None:
    roles_sync()
    agent = Group.objects.get(name="agent")
    agent.permissions.add(Permission.objects.get(content_type__app_label="claims", codename="delete_submission"))
    auditors = Group.objects.create(name="auditors")
    auditors.permissions.add(Permission.objects.get(content_type__app_label="claims", codename="view_program"))

    roles_sync()

    assert group_permissions("agent") == EXPECTED_ROLES["agent"]
    assert group_permissions("auditors") == {"claims.view_program"}


def test_a_permission_that_does_not_exist_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(roles.ROLE_PERMISSIONS, "agent", {"customers.view_customer", "claims.approve_everything"})
    with pytest.raises(LookupError, match=r"claims\.approve_everything"):
        roles_sync()
    # Migrations running before a newer model exists grant what exists.
    roles_sync(skip_missing=True)
    assert group_permissions("agent") == {"customers.view_customer"}


def test_an_agent_can_look_customers_up_but_not_change_programs() -> None:
    roles_sync()
    user = get_user_model().objects.create_user(username="agent-1", password="x" * 16, is_staff=True)
    user.groups.add(Group.objects.get(name="agent"))
    user = get_user_model().objects.get(pk=user.pk)  # has_perm caches per instance

    assert user.has_perm("customers.view_customer")
    assert user.has_perm("claims.add_submission")
    assert not user.has_perm("claims.change_program")
    assert not user.has_perm("customers.change_customer")
    assert not user.has_perm("claims.delete_submission")


def test_the_migration_creates_the_groups_with_historical_models_on_a_fresh_database() -> None:
    # As on a fresh database mid-migrate: no groups, and no Permission rows for the models of this
    # project yet (post_migrate has not run).
    Group.objects.filter(name__in=EXPECTED_ROLES).delete()
    Permission.objects.filter(
        content_type__app_label__in={"customers", "claims", "core", "django_celery_beat"}
    ).delete()
    # The newest roles migration (it runs after every model its permissions name exists).
    migration = importlib.import_module("support_portal.core.migrations.0010_monitoring")
    loader = MigrationExecutor(connection).loader
    historical_apps = loader.project_state(("core", "0010_monitoring"), at_end=True).apps

    with connection.schema_editor(atomic=False) as schema_editor:
        migration.Migration.operations[-1].code(historical_apps, schema_editor)

    for role, expected in EXPECTED_ROLES.items():
        assert group_permissions(role) == expected, role
