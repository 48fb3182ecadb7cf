"""Partial index for the resend sweep of public replies whose mail has not gone out."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tickets", "0003_escalation_schedule"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="ticketmessage",
            index=models.Index(
                condition=models.Q(("direction", "outbound"), ("email_sent_at__isnull", True), ("kind", "public")),
                fields=["created_at"],
                name="ticketmessage_unsent_idx",
            ),
        ),
    ]
