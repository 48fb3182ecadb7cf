"""A prefix index on customers' names for the support desk search (`name LIKE 'prefix%'`).

varchar_pattern_ops compares byte-wise, so LIKE 'prefix%' can use it whatever the database collation;
a leading wildcard ('%middle%') never could, which is why the search only offers prefixes
(support_portal.customers.selectors.customer_search; docs/support_desk.md). SQLite ignores the opclass.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("customers", "0003_drop_indexes_covered_by_composites")]

    operations = [
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["name"], opclasses=["varchar_pattern_ops"], name="customer_name_prefix_idx"),
        ),
    ]
