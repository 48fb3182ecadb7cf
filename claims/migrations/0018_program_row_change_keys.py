# Written by hand: the change keys of claims_program (claims/inputs.py, "How a change reaches the next run").
from django.db import migrations

# A program's row is read by its own run (parameters, deadline, rules) and by every other program only for
# its slug (the `already_compensated:<slug>` reason of a line it holds the grant of). So a write leaves the
# key `r:<id>` of each program it touched, which makes that program's next run compute in full, and `*`
# (every program in full) only when a slug changed or a program was deleted. A new program's row is read
# by no computation yet: no key. Before this, any write (opening or closing a program) left `*`.
PROGRAM_KEYS = """
CREATE OR REPLACE FUNCTION claims_input_keys_claims_program() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE change bigint;
BEGIN
    INSERT INTO claims_inputchange (table_name, transaction_id, changed_at)
    VALUES (TG_TABLE_NAME, pg_current_xact_id()::text::bigint, now()) RETURNING id INTO change;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO claims_inputchangekey (change_id, kind, key)
        SELECT DISTINCT change, 'r', o.id::text FROM old_rows o UNION SELECT change, '*', '';
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO claims_inputchangekey (change_id, kind, key)
        SELECT change, 'r', n.id::text FROM new_rows n
        UNION SELECT change, 'r', o.id::text FROM old_rows o
        UNION SELECT change, '*', '' FROM old_rows o JOIN new_rows n ON n.id = o.id WHERE n.slug <> o.slug;
    END IF;
    RETURN NULL;
END
$$;
"""

EVERYTHING_KEYS = """
CREATE OR REPLACE FUNCTION claims_input_keys_claims_program() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE change bigint;
BEGIN
    INSERT INTO claims_inputchange (table_name, transaction_id, changed_at)
    VALUES (TG_TABLE_NAME, pg_current_xact_id()::text::bigint, now()) RETURNING id INTO change;
    INSERT INTO claims_inputchangekey (change_id, kind, key) VALUES (change, '*', '');
    RETURN NULL;
END
$$;
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(PROGRAM_KEYS)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(EVERYTHING_KEYS)


class Migration(migrations.Migration):
    dependencies = [("claims", "0017_incremental_change_keys")]

    operations = [migrations.RunPython(forwards, backwards, elidable=False)]
