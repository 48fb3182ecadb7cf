"""The bank files (the transfer file written, the bank's result and the providers' settlement files imported)
carry account numbers: they are stored encrypted with the payout key, never shown in the admin, and
re-encrypted by the key-rotation command like every other payout secret."""

import datetime as dt
import hashlib

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from payouts import crypto
from payouts.banking.models import BankAccount, BankResultImport, SettlementImport, ZenginExport
from payouts.banking.services import bank_results_import, zengin_export_create, zengin_export_download
from payouts.models import PayoutSecret
from payouts.zengin import simulate_bank_results
from tests.banking.conftest import bank_payouts, finance_user, make_program

pytestmark = pytest.mark.django_db

TOMORROW = dt.date.today() + dt.timedelta(days=1)
ACCOUNT_NUMBER = "1234567"  # every account of bank_payouts()


def stored_values(model) -> list[object]:
    """Every column of every row of the model's table, as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {model._meta.db_table}")
        return [value for row in cursor.fetchall() for value in row]


def holds_in_clear(model, needle: str) -> bool:
    for value in stored_values(model):
        if isinstance(value, memoryview | bytes) and needle.encode() in bytes(value):
            return True
        if isinstance(value, str) and needle in value:
            return True
    return False


def written_and_answered():
    finance = finance_user()
    bank_payouts(make_program("bank_transfer"), 2)
    export = zengin_export_create(actor=finance, transfer_date=TOMORROW, sender_key="demo")
    sent = zengin_export_download(export=export, actor=finance)
    answer = simulate_bank_results(sent, returned={})
    imported = bank_results_import(actor=finance, data=answer, file_name="result.txt")
    return finance, export, sent, answer, imported


def test_the_transfer_file_and_the_bank_result_are_stored_encrypted():
    # Given a transfer file written and the bank's answer imported (both carry the account numbers)
    _finance, export, sent, answer, imported = written_and_answered()
    assert ACCOUNT_NUMBER.encode() in sent and ACCOUNT_NUMBER.encode() in answer

    # Then no stored column holds an account number in clear
    assert not holds_in_clear(ZenginExport, ACCOUNT_NUMBER)
    assert not holds_in_clear(BankResultImport, ACCOUNT_NUMBER)
    # and the files come back byte for byte (the sha256 is of the clear file)
    export.refresh_from_db()
    imported.refresh_from_db()
    assert export.file_bytes() == sent and crypto.decrypt_bytes(export.content_ciphertext) == sent
    assert imported.file_bytes() == answer
    assert export.sha256 == hashlib.sha256(sent).hexdigest()


def test_the_admin_shows_neither_the_file_nor_its_ciphertext(client):
    finance, export, _sent, _answer, imported = written_and_answered()
    client.force_login(finance)

    pages = [
        client.get(reverse("admin:banking_zenginexport_change", args=[export.pk])),
        client.get(reverse("admin:banking_zenginexport_changelist")),
    ]
    pages = [page.content.decode() for page in pages]

    export.refresh_from_db()
    for page in pages:
        assert ACCOUNT_NUMBER not in page
        assert export.content_ciphertext[:40] not in page
    imported.refresh_from_db()
    assert imported.content_ciphertext[:40] not in pages[0]


def test_rotation_re_encrypts_every_payout_token_with_the_new_key(monkeypatch):
    # Given everything encrypted with the old key: account numbers, payout secrets, bank files
    old_key = crypto.DEV_KEY
    _finance, export, sent, answer, imported = written_and_answered()
    settlement = SettlementImport.objects.create(
        file_name="s.csv",
        sha256="0" * 64,
        content_ciphertext=crypto.encrypt_bytes(b"reference,amount\n"),
        imported_by=export.created_by,
        imported_at=export.created_at,
        outcome="clean",
    )
    new_key = Fernet.generate_key().decode()

    # When a new key is put in front and the rotation command runs
    monkeypatch.setenv(crypto.ENV_VAR, f"{new_key},{old_key}")
    crypto.reset_key_cache()
    call_command("rotate_payout_key", "--chunk-size", "1", verbosity=0)  # chunk boundaries too

    # Then with only the new key every token still decrypts, and none opens with the old key alone
    monkeypatch.setenv(crypto.ENV_VAR, new_key)
    crypto.reset_key_cache()
    try:
        export.refresh_from_db()
        imported.refresh_from_db()
        settlement.refresh_from_db()
        assert export.file_bytes() == sent
        assert imported.file_bytes() == answer
        assert settlement.file_bytes() == b"reference,amount\n"
        accounts = list(BankAccount.objects.all())
        assert [account.account_number() for account in accounts] == [ACCOUNT_NUMBER] * 2
        secrets = list(PayoutSecret.objects.all())
        assert len(secrets) == 2 and all(secret.reveal().code == "" for secret in secrets)
        old = Fernet(old_key)
        tokens = [export.content_ciphertext, imported.content_ciphertext, settlement.content_ciphertext]
        tokens += [a.account_number_ciphertext for a in accounts] + [s.ciphertext for s in secrets]
        for token in tokens:
            with pytest.raises(InvalidToken):
                old.decrypt(token.encode())
    finally:
        crypto.reset_key_cache()
