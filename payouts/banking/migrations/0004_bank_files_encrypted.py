"""The bank files (transfer exports, bank results, settlement files) are stored as Fernet tokens with the
payout key instead of in clear: the existing rows are encrypted in place, then the clear column goes."""

from django.db import migrations, models

from payouts import crypto

MODELS = ("ZenginExport", "BankResultImport", "SettlementImport")


def encrypt_files(apps, schema_editor):
    for name in MODELS:
        model = apps.get_model("banking", name)
        for pk, content in model.objects.values_list("pk", "content").iterator(chunk_size=100):
            model.objects.filter(pk=pk).update(content_ciphertext=crypto.encrypt_bytes(bytes(content)))


def decrypt_files(apps, schema_editor):
    for name in MODELS:
        model = apps.get_model("banking", name)
        for pk, token in model.objects.values_list("pk", "content_ciphertext").iterator(chunk_size=100):
            model.objects.filter(pk=pk).update(content=crypto.decrypt_bytes(token))


class Migration(migrations.Migration):
    dependencies = [
        ("banking", "0003_event_copied_keys_unindexed"),
    ]

    operations = [
        *(
            migrations.AddField(
                model_name=name.lower(),
                name="content_ciphertext",
                field=models.TextField(default="", editable=False, verbose_name="file (encrypted)"),
                preserve_default=False,
            )
            for name in MODELS
        ),
        # A default for the clear column so that going back can add it again before refilling it.
        *(
            migrations.AlterField(
                model_name=name.lower(),
                name="content",
                field=models.BinaryField(default=b"", editable=False, verbose_name="file"),
            )
            for name in MODELS
        ),
        migrations.RunPython(encrypt_files, decrypt_files, elidable=False),
        *(migrations.RemoveField(model_name=name.lower(), name="content") for name in MODELS),
    ]
