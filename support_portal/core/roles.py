"""Staff roles: one Django group per role, with least-privilege model permissions.

`ROLE_PERMISSIONS` is the whole matrix, one declarative dict of "app_label.codename" strings.
`roles_sync()` makes the database match it exactly: it creates any missing groups and Permission rows,
grants what the dict lists and revokes anything else from those groups. Groups not in the dict are
left alone.

Changing a role (e.g. when tickets or payout batches are built):
1. edit `ROLE_PERMISSIONS` (and the pinned expectations in `tests/core/test_roles.py`);
2. add a data migration in `core` that depends on the migrations creating the models it names and
   runs `roles_sync` with the historical apps::

       operations = [migrations.RunPython(roles_sync_migration, migrations.RunPython.noop)]

Every such migration imports the *current* dict, so on a fresh database an older one may run before
the models a newer entry names exist; `skip_missing=True` lets it grant what exists then, and the
newest sync migration (which runs after all its dependencies) grants the rest. Outside migrations
`skip_missing` stays False, so a typo in the dict fails loudly (the role tests call it that way).

Rules the matrix keeps: nobody gets `delete_` on money or source-data rows (customers, claims,
payouts); managers may delete a company closed day, which is configuration, not a record.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.apps.registry import Apps
from django.contrib.auth.management import create_permissions
from django.db import DEFAULT_DB_ALIAS, transaction

# What support agents need to look a customer up and record a claim for a caller.
_CUSTOMER_LOOKUP = {
    "customers.view_customer",
    "customers.view_plan",
    "customers.view_subscription",
    "customers.view_charge",
    "customers.view_login",
    "customers.view_usageevent",
    "customers.view_coupon",
    "customers.view_coupontransaction",
}

# Working the tickets of one's queues (agents, and managers, who also configure the desk).
_TICKET_WORK = {
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
}

# Opening and working identity-recovery cases (agents and managers; only managers unlock).
_IDENTITY_RECOVERY = {
    "identity.view_identityrecoverycase",
    "identity.add_identityrecoverycase",
    "identity.view_identityverificationattempt",
    "identity.view_identityrecoveryevent",
}

ROLE_PERMISSIONS: dict[str, set[str]] = {
    # Agents work the tickets of their queues, look customers up and record submissions.
    "agent": {
        *_CUSTOMER_LOOKUP,
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
        *_TICKET_WORK,
        *_IDENTITY_RECOVERY,
        # A caller's bank account, entered through the agent form (masked; never changed any other way).
        "banking.view_bankaccount",
        "banking.add_bankaccount",
    },
    # Reviewers decide claims (approve, reject, request information, reopen) and read what a decision
    # is based on; maker-checker (claims.review) stops anyone approving their own work.
    "reviewer": {
        *_CUSTOMER_LOOKUP,
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
    # Programs and deadlines, imports, the company calendar and the beat schedules.
    "manager": {
        *_CUSTOMER_LOOKUP,
        "claims.view_program",
        "claims.add_program",
        "claims.change_program",
        "claims.run_program",
        "claims.view_programrun",
        "claims.view_submission",
        "claims.view_claim",
        "claims.view_claimline",
        "claims.view_grant",
        "claims.approve_claim",  # second approvals above a program's threshold
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
        # Per-program payout settings (reminders, re-offers) and the notice templates page.
        "payouts.view_programpayoutpolicy",
        "payouts.add_programpayoutpolicy",
        "payouts.change_programpayoutpolicy",
        "payouts.view_payoutnotice",
        # The audit viewer (who did what to a claim or payout), sign-in events and the data-export log.
        "accounts.view_audit_trail",
        "accounts.view_securityevent",
        "accounts.view_exportrecord",
        # API keys of the source systems (created and revoked in the admin, audited).
        "api.view_apikey",
        "api.add_apikey",
        "api.revoke_apikey",
        *_TICKET_WORK,
        "tickets.view_all_queues",
        "tickets.view_dashboard",
        "tickets.add_queue",
        "tickets.change_queue",
        "tickets.view_queuesurge",
        "tickets.add_queuesurge",
        "tickets.change_queuesurge",
        "tickets.add_cannedreply",
        "tickets.change_cannedreply",
        *_IDENTITY_RECOVERY,
        "identity.unlock_identityrecoverycase",
        "identity.view_unmasked_contact",
    },
    # Payout batches, notices and code reveals, bank files and results, settlement files, the reconciliation report.
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
        # Payout batches (start / pause / cancel), notices (read, re-send), the audited code reveal.
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
        # Bank transfers (Zengin files, bank results), settlement files, refunds, the reconciliation report.
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


def _split_permission(permission: str) -> tuple[str, str]:
    app_label, dot, codename = permission.partition(".")
    if not dot or not app_label or not codename:
        raise ValueError(f"permission {permission!r} is not 'app_label.codename'")
    return app_label, codename


def roles_sync(*, apps: Apps = global_apps, using: str = DEFAULT_DB_ALIAS, skip_missing: bool = False) -> None:
    """Makes each group in ROLE_PERMISSIONS hold exactly its listed permissions; safe to run again.

    `apps` is the app registry: the global one at run time, the historical one in a migration.
    `skip_missing` ignores permissions that do not exist (yet); only migrations should set it.
    Raises LookupError naming every permission that does not exist when `skip_missing` is False.
    """
    # Permission rows are normally created by a post_migrate signal, i.e. after the whole migrate run;
    # a data migration running earlier would not find the permissions of models created in the same run.
    for app_config in apps.get_app_configs():
        _create_permissions_for(app_config, apps=apps, using=using)

    group_model: Any = apps.get_model("auth", "Group")
    permission_model: Any = apps.get_model("auth", "Permission")

    wanted = {_split_permission(permission) for permissions in ROLE_PERMISSIONS.values() for permission in permissions}
    wanted_app_labels = {app_label for app_label, _codename in wanted}
    permission_ids = {
        (app_label, codename): pk
        for pk, app_label, codename in permission_model.objects.using(using)
        .filter(content_type__app_label__in=wanted_app_labels)
        .values_list("pk", "content_type__app_label", "codename")
    }
    missing = sorted(f"{app_label}.{codename}" for app_label, codename in wanted - permission_ids.keys())
    if missing and not skip_missing:
        raise LookupError(f"ROLE_PERMISSIONS names permissions that do not exist: {', '.join(missing)}")

    with transaction.atomic(using=using):
        for role, permissions in ROLE_PERMISSIONS.items():
            group, _created = group_model.objects.using(using).get_or_create(name=role)
            ids = {
                permission_ids[key]
                for key in map(_split_permission, permissions)
                if key in permission_ids  # only misses when skip_missing allowed it above
            }
            # set() compares with what the group holds and only adds and removes the difference.
            group.permissions.set(ids)


def _create_permissions_for(app_config: Any, *, apps: Apps, using: str) -> None:
    # Historical app configs (migration state) have no models_module, and create_permissions skips
    # apps without one; the attribute only has to be truthy for the call.
    stub_without_module = not getattr(app_config, "models_module", None)
    if stub_without_module:
        app_config.models_module = True
    try:
        create_permissions(app_config, apps=apps, using=using, verbosity=0)
    finally:
        if stub_without_module:
            app_config.models_module = None


def roles_sync_migration(apps: Apps, schema_editor: Any) -> None:
    """The RunPython body of every roles data migration (historical apps; permissions not yet created
    for models a later migration adds are skipped, the newest roles migration grants them)."""
    roles_sync(apps=apps, using=schema_editor.connection.alias, skip_missing=True)
