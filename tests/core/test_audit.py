"""Every change of a money-relevant row is recorded by a trigger with who, when, before and after."""

import pghistory.models
import pytest
from django.apps import apps
from django.db import ProgrammingError, connection, transaction

from claims.models import Program
from support_portal.core.audit import audit_context
from support_portal.customers.models import Charge
from tests.factories import ChargeFactory, UserFactory

pytestmark = pytest.mark.django_db


def _charge_events(charge_id: str) -> list[tuple[str, int, int | None]]:
    ChargeEvent = apps.get_model("customers", "ChargeEvent")  # one event table serves every label
    return [
        (e.pgh_label, e.amount_jpy, (e.pgh_context.metadata.get("user") if e.pgh_context else None))
        for e in ChargeEvent.objects.filter(pgh_obj_id=charge_id).select_related("pgh_context").order_by("pgh_id")
    ]


def test_insert_of_source_row_writes_no_event_but_update_records_before_after_and_actor():
    # Given a charge (source data: its creation is recorded by the import run, not per row)
    charge = ChargeFactory.create(amount_jpy=550)
    finance = UserFactory.create(username="finance-1")
    assert _charge_events(charge.charge_id) == []

    # When a user corrects its amount through the audited context
    with audit_context(actor=finance, reason="source correction"):
        Charge.objects.filter(pk=charge.pk).update(amount_jpy=990)

    # Then the before and after rows are recorded, both naming the user
    assert _charge_events(charge.charge_id) == [("before_update", 550, finance.pk), ("update", 990, finance.pk)]


def test_set_based_bulk_update_is_audited_row_by_row():
    # Given three charges
    charges = ChargeFactory.create_batch(3, amount_jpy=1000)

    # When a set-based job updates them in one statement, as the system (no user)
    with audit_context(actor=None, job="price-fix"):
        updated = Charge.objects.filter(pk__in=[c.pk for c in charges]).update(amount_jpy=1100)

    # Then each row has its before/after pair, and the context names the job
    assert updated == 3
    for charge in charges:
        assert _charge_events(charge.charge_id) == [("before_update", 1000, None), ("update", 1100, None)]
    ChargeEvent = apps.get_model("customers", "ChargeEvent")
    contexts = {e.pgh_context.metadata["job"] for e in ChargeEvent.objects.select_related("pgh_context")}
    assert contexts == {"price-fix"}


def test_update_that_changes_nothing_writes_no_event():
    charge = ChargeFactory.create(amount_jpy=550)
    Charge.objects.filter(pk=charge.pk).update(amount_jpy=550)
    assert _charge_events(charge.charge_id) == []


def test_decision_rows_record_insert_update_and_delete_snapshots():
    # Given a manager
    manager = UserFactory.create(username="manager-1")

    # When a program is created, renamed and deleted under their name
    with audit_context(actor=manager):
        program = Program.objects.create(slug="test-program", name="before", policy="overpayment")
        Program.objects.filter(pk=program.pk).update(name="after")
        Program.objects.filter(pk=program.pk).delete()

    # Then three snapshots exist, in order, each attributed to the manager
    events = pghistory.models.Events.objects.tracks(program).order_by("pgh_created_at", "pgh_id")
    assert [(e.pgh_label, e.pgh_data["name"]) for e in events] == [
        ("insert", "before"),
        ("update", "after"),
        ("delete", "after"),
    ]
    assert {e.pgh_context["user"] for e in events} == {manager.pk}


def test_audit_rows_are_append_only():
    # Given an audit row
    charge = ChargeFactory.create(amount_jpy=550)
    Charge.objects.filter(pk=charge.pk).update(amount_jpy=600)
    ChargeEvent = apps.get_model("customers", "ChargeEvent")
    assert ChargeEvent.objects.count() == 2

    # When someone tries to rewrite or erase history, the database refuses
    with pytest.raises(ProgrammingError, match="Cannot update or delete"), transaction.atomic():
        ChargeEvent.objects.update(amount_jpy=1)
    with (
        pytest.raises(ProgrammingError, match="Cannot update or delete"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(f"DELETE FROM {ChargeEvent._meta.db_table}")

    # Then the history is unchanged
    assert sorted(ChargeEvent.objects.values_list("amount_jpy", flat=True)) == [550, 600]
