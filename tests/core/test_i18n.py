"""Japanese first, English available — for Django's own strings and ours."""

import pytest
from django.utils import translation

from support_portal.customers.models import Charge


@pytest.mark.django_db
def test_admin_speaks_japanese_by_default_and_english_on_request(client):
    japanese = client.get("/admin/login/")
    english = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="en")
    assert japanese.status_code == english.status_code == 200
    assert japanese.headers["Content-Language"] == "ja"
    assert "ログイン" in japanese.text
    assert english.headers["Content-Language"] == "en"
    assert "Log in" in english.text


def test_our_messages_are_compiled_in_both_languages():
    with translation.override("ja"):
        assert str(Charge._meta.get_field("amount_jpy").verbose_name) == "金額（円）"
    with translation.override("en"):
        assert str(Charge._meta.get_field("amount_jpy").verbose_name) == "amount (JPY)"
