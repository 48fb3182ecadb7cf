"""Pushing source records over the API: the import service loads them (all-or-nothing, `records[i]:
column: reason` errors), under an Idempotency-Key the answer is stored, and a key reused with another body
is refused; wrong, revoked or unscoped keys and malformed bodies change nothing."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from pghistory.models import Events

from support_portal.api.ingest import MAX_RECORDS
from support_portal.api.models import IdempotencyRecord
from support_portal.api.services import api_key_revoke
from support_portal.core.models import ImportRun
from support_portal.customers.models import Charge, Customer
from tests.api.conftest import make_key, post_json
from tests.factories import SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = "/api/v1/ingest/customers"
CHARGES = "/api/v1/ingest/charges"


def customers(n: int, start: int = 0) -> list[dict[str, object]]:
    return [
        {
            "customer_id": f"API{i:05d}",
            "name": f"顧客 {i}",
            "email": f"api{i}@example.jp",
            "phone": "090-1234-5678",
            "created_at": "2024-04-01T09:00:00+09:00",
        }
        for i in range(start, start + n)
    ]


def state() -> tuple[int, int, int]:
    return Customer.objects.count(), ImportRun.objects.count(), IdempotencyRecord.objects.count()


def test_a_batch_of_customers_is_loaded_by_the_import_service_as_the_api_key(client: Client, ingest_key) -> None:
    response = post_json(client, CUSTOMERS, customers(3), key=ingest_key.key)

    assert response.status_code == 200
    run = ImportRun.objects.get()
    assert response.json() == {
        "status": "succeeded",
        "records": 3,
        "inserted": 3,
        "updated": 0,
        "import_run": run.pk,
    }
    assert sorted(Customer.objects.values_list("customer_id", flat=True)) == ["API00000", "API00001", "API00002"]
    assert (run.file_name, run.source, run.actor, run.actor_label) == (
        "customers.csv",
        "api",
        None,
        f"api:{ingest_key.api_key.prefix}",
    )


def test_an_update_through_the_api_names_the_api_key_in_the_audit_trail(client: Client, ingest_key) -> None:
    post_json(client, CUSTOMERS, customers(1), key=ingest_key.key)
    changed = customers(1)
    changed[0]["name"] = "新しい名前"

    response = post_json(client, CUSTOMERS, changed, key=ingest_key.key)

    assert response.json()["updated"] == 1
    events = Events.objects.tracks(Customer.objects.get(customer_id="API00000")).filter(pgh_label="update")
    assert [(event.pgh_context["actor"], event.pgh_context.get("user")) for event in events] == [
        (f"api:{ingest_key.api_key.prefix}", None)
    ]


def test_a_batch_with_one_bad_record_writes_nothing_and_names_it_like_import_records(
    client: Client, ingest_key
) -> None:
    batch = customers(5)
    batch[3]["email"] = "not-an-email"
    before = state()

    response = post_json(client, CUSTOMERS, batch, key=ingest_key.key)

    assert response.status_code == 400
    assert response.json() == {
        "status": "rejected",
        "error_count": 1,
        "errors": ["records[3]: email: not a valid email address (e.g. taro@example.jp)"],
    }
    # Nothing loaded; the refused load is recorded as an ImportRun like a refused file.
    assert state()[0] == before[0] == 0
    assert ImportRun.objects.get().status == ImportRun.Status.REJECTED


def test_a_charge_for_an_unknown_subscription_is_a_row_error(client: Client, ingest_key) -> None:
    subscription = SubscriptionFactory.create()
    good = {
        "charge_id": "CHAPI1",
        "subscription_id": subscription.subscription_id,
        "amount_jpy": 550,
        "charged_at": "2024-09-01T00:00:00+09:00",
        "period_start": "2024-09-01",
        "period_end": "2024-10-01",
        "promotional": False,
    }

    response = post_json(
        client, CHARGES, [good, {**good, "charge_id": "CHAPI2", "subscription_id": "NOPE"}], key=ingest_key.key
    )

    assert response.status_code == 400
    assert response.json()["errors"] == ["records[1]: subscription_id: unknown subscription (not in the database)"]
    assert Charge.objects.count() == 0


def test_unknown_columns_and_non_scalar_values_are_refused_before_loading(client: Client, ingest_key) -> None:
    batch = customers(2)
    batch[0]["nickname"] = "x"
    batch[1]["name"] = {"first": "太郎"}

    response = post_json(client, CUSTOMERS, [*batch, "not an object"], key=ingest_key.key)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [error.split(": ")[0:2] for error in errors] == [
        ["records[0]", "nickname"],
        ["records[1]", "name"],
        ["records[2]", "must be an object of column"],
    ]
    assert state() == (0, 0, 0)


def test_malformed_json_and_a_non_array_body_are_400_and_write_nothing(client: Client, ingest_key) -> None:
    malformed = post_json(client, CUSTOMERS, b'[{"customer_id": "C1",', key=ingest_key.key)
    not_array = post_json(client, CUSTOMERS, {"customer_id": "C1"}, key=ingest_key.key)

    assert (malformed.status_code, not_array.status_code) == (400, 400)
    assert malformed.json()["errors"][0].startswith("body: not valid JSON")
    assert not_array.json()["errors"] == ["body: must be a JSON array of records"]
    assert state() == (0, 0, 0)


def test_json_the_fast_parser_refuses_is_read_as_the_standard_library_reads_it(client: Client, ingest_key) -> None:
    # Given a charge whose amount is an integer past 64 bits (valid JSON that orjson does not take), in a
    # UTF-16 body (JSON that orjson, UTF-8 only, does not take either)
    subscription = SubscriptionFactory.create()
    record = {
        "charge_id": "CHBIG",
        "subscription_id": subscription.subscription_id,
        "amount_jpy": 2**70,
        "charged_at": "2024-09-01T00:00:00+09:00",
        "period_start": "2024-09-01",
        "period_end": "2024-10-01",
        "promotional": False,
    }
    big = post_json(client, CHARGES, [record], key=ingest_key.key)
    utf16 = post_json(client, CHARGES, json.dumps([{**record, "amount_jpy": 550}]).encode("utf-16"), key=ingest_key.key)
    # Then the big amount is the importer's record error, not a JSON error, and the UTF-16 batch loads
    assert big.status_code == 400
    assert [error.split(": ")[:2] for error in big.json()["errors"]] == [["records[0]", "amount_jpy"]]
    assert utf16.status_code == 200
    assert list(Charge.objects.values_list("charge_id", "amount_jpy")) == [("CHBIG", 550)]


def test_charges_without_the_optional_columns_append_straight_into_the_table_as_their_empty_values(
    client: Client, ingest_key
) -> None:
    # Given one charge stored, and a batch of two more without payment_method or promotional
    subscription = SubscriptionFactory.create()

    def charge(charge_id: str) -> dict[str, object]:
        return {
            "charge_id": charge_id,
            "subscription_id": subscription.subscription_id,
            "amount_jpy": 550,
            "charged_at": "2024-09-01T00:00:00+09:00",
            "period_start": "2024-09-01",
            "period_end": "2024-10-01",
        }

    assert post_json(client, CHARGES, [charge("CH0")], key=ingest_key.key).status_code == 200
    # When the batch is pushed into the table that holds a charge
    with CaptureQueriesContext(connection) as captured:
        response = post_json(client, CHARGES, [charge("CH1"), charge("CH2")], key=ingest_key.key)
    # Then both are stored with the columns' empty values, COPYed into the table (no staging table)
    assert (response.status_code, response.json()["inserted"], response.json()["updated"]) == (200, 2, 0)
    assert sorted(Charge.objects.values_list("charge_id", "payment_method", "promotional")) == [
        ("CH0", "", False),
        ("CH1", "", False),
        ("CH2", "", False),
    ]
    assert [q["sql"] for q in captured.captured_queries if "import_records_staging" in q["sql"]] == []


def test_more_than_10000_records_is_413_and_writes_nothing(client: Client, ingest_key) -> None:
    response = post_json(client, CUSTOMERS, [{"customer_id": "C"}] * (MAX_RECORDS + 1), key=ingest_key.key)

    assert response.status_code == 413
    assert response.json()["errors"] == ["records: more than 10,000 records"]
    assert state() == (0, 0, 0)


@pytest.mark.parametrize("header", ["Bearer spk_00000000_wrong", "Bearer ", "Basic abc", None])
def test_a_wrong_or_missing_key_is_401_and_writes_nothing(client: Client, header: str | None) -> None:
    headers = {"authorization": header} if header is not None else {}

    response = client.post(CUSTOMERS, data=json.dumps(customers(1)), content_type="application/json", headers=headers)

    assert response.status_code == 401
    assert state() == (0, 0, 0)


def test_a_revoked_key_is_401_and_writes_nothing(client: Client, ingest_key) -> None:
    api_key_revoke(api_key_id=ingest_key.api_key.pk, actor=UserFactory.create())

    response = post_json(client, CUSTOMERS, customers(1), key=ingest_key.key)

    assert response.status_code == 401
    assert state() == (0, 0, 0)


def test_a_key_without_the_ingest_scope_is_403_and_writes_nothing(client: Client, read_key) -> None:
    response = post_json(client, CUSTOMERS, customers(1), key=read_key.key)

    assert response.status_code == 403
    assert response.json() == {"detail": "this API key lacks the 'ingest' scope"}
    assert state() == (0, 0, 0)


def test_the_same_idempotency_key_and_body_get_the_stored_answer_and_load_nothing_again(
    client: Client, ingest_key
) -> None:
    body = json.dumps(customers(2))

    first = post_json(client, CUSTOMERS, body, key=ingest_key.key, **{"Idempotency-Key": "batch-1"})
    after_first = state()
    second = post_json(client, CUSTOMERS, body, key=ingest_key.key, **{"Idempotency-Key": "batch-1"})

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert state() == after_first == (2, 1, 1)


def test_the_same_idempotency_key_with_another_body_is_409_and_loads_nothing(client: Client, ingest_key) -> None:
    post_json(client, CUSTOMERS, customers(2), key=ingest_key.key, **{"Idempotency-Key": "batch-1"})
    after_first = state()

    response = post_json(client, CUSTOMERS, customers(3), key=ingest_key.key, **{"Idempotency-Key": "batch-1"})

    assert response.status_code == 409
    assert response.json()["errors"] == ["Idempotency-Key: already used with another request body"]
    assert state() == after_first


def test_a_rejected_batch_is_answered_the_same_under_its_idempotency_key(client: Client, ingest_key) -> None:
    batch = customers(2)
    batch[1]["phone"] = "12"

    first = post_json(client, CUSTOMERS, batch, key=ingest_key.key, **{"Idempotency-Key": "k"})
    second = post_json(client, CUSTOMERS, batch, key=ingest_key.key, **{"Idempotency-Key": "k"})

    assert (first.status_code, second.status_code) == (400, 400)
    assert second.json() == first.json()
    assert ImportRun.objects.count() == 1


def test_idempotency_keys_are_per_api_key(client: Client, ingest_key) -> None:
    other = make_key("ingest", name="other billing")
    post_json(client, CUSTOMERS, customers(1), key=ingest_key.key, **{"Idempotency-Key": "same"})

    response = post_json(client, CUSTOMERS, customers(2, start=5), key=other.key, **{"Idempotency-Key": "same"})

    assert response.status_code == 200
    assert Customer.objects.count() == 3


def test_api_posts_need_no_csrf_token_and_are_not_sent_to_sign_in_or_two_factor(settings, ingest_key) -> None:
    settings.REQUIRE_2FA = True
    client = Client(enforce_csrf_checks=True)

    response = post_json(client, CUSTOMERS, customers(1), key=ingest_key.key)

    assert response.status_code == 200
    assert Customer.objects.count() == 1


def test_the_openapi_schema_lists_every_endpoint(client: Client) -> None:
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    assert sorted(paths) == [
        "/api/v1/ingest/charges",
        "/api/v1/ingest/customers",
        "/api/v1/ingest/logins",
        "/api/v1/ingest/submissions",
        "/api/v1/ingest/subscriptions",
        "/api/v1/payouts/{payout_id}",
        "/api/v1/programs/{program}/claims/{subject}",
        "/api/v1/programs/{program}/report",
        "/api/v1/webhooks/{provider}",
    ]
    assert client.get("/api/v1/docs").status_code == 200


def test_beyond_the_rate_limit_a_key_gets_429_and_nothing_is_written(client: Client, settings) -> None:
    settings.API_RATE_LIMIT = "2/m"
    limited, other = make_key("ingest", name="limited"), make_key("ingest", name="other")
    post_json(client, CUSTOMERS, customers(1), key=limited.key)
    post_json(client, CUSTOMERS, customers(1, start=1), key=limited.key)
    before = state()

    refused = post_json(client, CUSTOMERS, customers(1, start=2), key=limited.key)
    allowed = post_json(client, CUSTOMERS, customers(1, start=3), key=other.key)

    assert (refused.status_code, allowed.status_code) == (429, 200)
    assert state() == (before[0] + 1, before[1] + 1, before[2])
    assert not Customer.objects.filter(customer_id="API00002").exists()
