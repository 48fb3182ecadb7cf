"""The audit trail cannot be switched off by the application's database role, and every event names who.

The suite runs as the `postgres` superuser (the database's owner). These tests create a role like the one
production gives the web and the workers (DML rights only, owns nothing), switch to it with SET ROLE and
try to change audited rows without trace.
"""

import pghistory.models
import pytest
from django.apps import apps
from django.db import InternalError, ProgrammingError, connection, transaction

from claims.models import Program
from support_portal.celery import app as celery_app
from support_portal.core.audit import audit_context
from tests.db_roles import app_role_create, as_role, ignore_every_trigger
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def program_events(program: Program) -> list[tuple[str, str, dict | None]]:
    events = pghistory.models.Events.objects.tracks(program).order_by("pgh_created_at", "pgh_id")
    return [(e.pgh_label, e.pgh_data["name"], e.pgh_context) for e in events]


def test_the_app_role_cannot_switch_the_audit_triggers_off(app_role):
    # Given a program
    program = Program.objects.create(slug="hardening", name="before", policy="overpayment")

    # When the application's role sets pgtrigger.ignore for every trigger and renames it with raw SQL
    with as_role(app_role), connection.cursor() as cursor:
        ignore_every_trigger(cursor)
        cursor.execute("UPDATE claims_program SET name = 'after' WHERE id = %s", [program.pk])

    # Then the change is recorded all the same, naming the database role that made it
    events = program_events(program)
    assert [(label, name) for label, name, _context in events] == [("insert", "before"), ("update", "after")]
    assert events[1][2] is not None
    assert events[1][2]["db_user"] == app_role


def test_the_app_role_cannot_delete_an_audited_row_without_trace(app_role):
    # Given a program
    program = Program.objects.create(slug="hardening", name="kept", policy="overpayment")

    # When the application's role deletes it with every trigger told to skip
    with as_role(app_role), connection.cursor() as cursor:
        ignore_every_trigger(cursor)
        cursor.execute("DELETE FROM claims_program WHERE id = %s", [program.pk])

    # Then the delete is recorded, naming the role
    events = program_events(program)
    assert [(label, name) for label, name, _context in events] == [("insert", "kept"), ("delete", "kept")]
    deleted_context = events[1][2]
    assert deleted_context is not None
    assert deleted_context["db_user"] == app_role


def test_the_app_role_cannot_rewrite_history_even_when_told_to_ignore(app_role):
    # Given a recorded change
    program = Program.objects.create(slug="hardening", name="kept", policy="overpayment")
    ProgramEvent = apps.get_model("claims", "ProgramEvent")  # one event table serves every label
    assert ProgramEvent.objects.filter(pgh_obj_id=program.pk).count() == 1

    # When the application's role tries to erase it with every trigger told to skip
    with (
        as_role(app_role),
        pytest.raises((ProgrammingError, InternalError), match="Cannot update or delete"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        ignore_every_trigger(cursor)
        cursor.execute(f"DELETE FROM {ProgramEvent._meta.db_table}")

    # Then the event is still there
    assert ProgramEvent.objects.filter(pgh_obj_id=program.pk).count() == 1


def test_the_database_owner_may_still_ignore_triggers_for_migrations_and_imports():
    # Given a program (the suite runs as the owner, postgres, as migrate and the import's owner path do)
    program = Program.objects.create(slug="hardening", name="before", policy="overpayment")

    # When the owner tells the triggers to skip and renames it
    with connection.cursor() as cursor:
        ignore_every_trigger(cursor)
        cursor.execute("UPDATE claims_program SET name = 'after' WHERE id = %s", [program.pk])
        cursor.execute("SELECT set_config('pgtrigger.ignore', NULL, true)")

    # Then the trigger did skip, as pgtrigger documents (the import's insert skip relies on it)
    assert [(label, name) for label, name, _context in program_events(program)] == [("insert", "before")]


def test_a_raw_change_outside_any_audit_context_names_the_database_user_and_the_client():
    # Given a program
    program = Program.objects.create(slug="hardening", name="before", policy="overpayment")

    # When someone changes it with raw SQL and no audit context (psql, a script)
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('application_name', 'psql', false)")
        cursor.execute("UPDATE claims_program SET name = 'after' WHERE id = %s", [program.pk])
        cursor.execute("SELECT current_user")
        db_user = cursor.fetchone()[0]

    # Then its event names the database user and the client instead of no one
    assert program_events(program)[-1] == ("update", "after", {"db_user": db_user, "application_name": "psql"})


def test_an_application_context_also_records_the_database_user():
    # Given a program and a manager
    program = Program.objects.create(slug="hardening", name="before", policy="overpayment")
    manager = UserFactory.create(username="manager-1")

    # When the manager renames it through the audited context
    with audit_context(actor=manager, reason="rename"):
        Program.objects.filter(pk=program.pk).update(name="after")

    # Then the event names the user, the reason and the database role
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        db_user = cursor.fetchone()[0]
    expected_context = {"user": manager.pk, "reason": "rename", "db_user": db_user}
    assert program_events(program)[-1] == ("update", "after", expected_context)


@celery_app.task(name="tests.audit_hardening.rename_program")
def rename_program(program_id: int) -> None:
    Program.objects.filter(pk=program_id).update(name="renamed by a job")


def test_a_celery_task_writing_outside_audit_context_is_named_as_the_system_job():
    # Given a program
    program = Program.objects.create(slug="hardening", name="before", policy="overpayment")

    # When a task changes it without opening an audit context
    rename_program.apply(args=(program.pk,)).get()

    # Then the event names the task as the system job, and later statements are no longer attributed to it
    context = program_events(program)[-1][2]
    assert context is not None
    assert context["application_name"] == "system:tests.audit_hardening.rename_program"
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('application_name')")
        assert cursor.fetchone()[0] != "system:tests.audit_hardening.rename_program"


def test_a_non_superuser_owner_role_and_its_members_may_ignore_triggers(app_role):
    # Given the database owned by a plain role (production's owner role), and a migration role in it
    owner, member = app_role_create(), app_role_create()
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER DATABASE {connection.settings_dict['NAME']} OWNER TO {owner}")
        cursor.execute(f"GRANT {owner} TO {member}")
    program = Program.objects.create(slug="hardening", name="before", policy="overpayment")

    # When each of them, and the application's role, renames it with every trigger told to skip
    for role, name in [(owner, "by owner"), (member, "by member"), (app_role, "by app")]:
        with as_role(role), connection.cursor() as cursor:
            ignore_every_trigger(cursor)
            cursor.execute("UPDATE claims_program SET name = %s WHERE id = %s", [name, program.pk])
            cursor.execute("SELECT set_config('pgtrigger.ignore', NULL, true)")

    # Then only the application role's change is recorded: the owner and its members may skip
    events = program_events(program)
    assert [(label, name) for label, name, _context in events] == [("insert", "before"), ("update", "by app")]
