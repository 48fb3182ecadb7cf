"""Customer search: each query shape goes to its index, and a phone matches with any hyphenation."""

import pytest
from django.db import connection
from django.urls import reverse

from support_portal.customers.models import Customer
from support_portal.customers.selectors import SearchKind, customer_search, phone_digits, search_kind
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("term", "kind"),
    [
        ("", SearchKind.EMPTY),
        ("  ", SearchKind.EMPTY),
        ("Hanako@Example.jp", SearchKind.EMAIL),
        ("090-1234-5678", SearchKind.PHONE),
        ("090 1234 5678", SearchKind.PHONE),
        ("(090)1234-5678", SearchKind.PHONE),
        ("C00000001", SearchKind.ID_OR_NAME),
        ("佐藤", SearchKind.ID_OR_NAME),
        ("12", SearchKind.ID_OR_NAME),  # too short for a phone
    ],
)
def test_search_kind(term, kind):
    assert search_kind(term) == kind


def test_phone_digits_drops_every_separator_and_reads_full_width_digits():
    assert phone_digits("０９０－１２３４－５６７８") == "09012345678"
    assert phone_digits("090 1234 5678") == "09012345678"


@pytest.fixture
def customers() -> dict[str, Customer]:
    return {
        "hanako": CustomerFactory.create(
            customer_id="C1",
            name="佐藤 花子",
            email="Hanako@example.jp",
            phone="090-1234-5678",
        ),
        "taro": CustomerFactory.create(
            customer_id="C2", name="佐藤 太郎", email="taro@example.jp", phone="03-1111-2222"
        ),
        "other": CustomerFactory.create(customer_id="C3", name="鈴木 一郎", email="ichiro@example.jp", phone=""),
    }


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("09012345678", {"C1"}),
        ("090-1234-5678", {"C1"}),
        ("090 1234 5678", {"C1"}),
        ("０９０１２３４５６７８", {"C1"}),
        ("hanako@EXAMPLE.jp", {"C1"}),
        ("C2", {"C2"}),
        ("佐藤", {"C1", "C2"}),
        ("佐藤 太", {"C2"}),
        ("太郎", set()),  # names match by prefix only: no scan for a middle
        ("1234", set()),
    ],
)
def test_customer_search(customers, term, expected):
    found = customer_search(Customer.objects.all(), term)
    assert set(found.values_list("customer_id", flat=True)) == expected


def plan_of(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute(f"EXPLAIN {sql}", params)
            return "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("SET enable_seqscan = on")


@pytest.mark.parametrize(
    ("term", "index"),
    [
        ("090-1234-5678", "customer_phone_digits_idx"),
        ("hanako@example.jp", "customer_email_lower_idx"),
        ("佐藤", "customer_name_prefix_idx"),
    ],
)
def test_each_search_shape_can_use_its_index(customers, term, index):
    # Seqscans are disabled so a tiny test table shows which index the query *can* use.
    assert index in plan_of(customer_search(Customer.objects.all(), term))


def test_the_admin_changelist_finds_a_customer_by_phone_typed_differently(client, customers, agent):
    # given
    client.force_login(agent)
    url = reverse("admin:customers_customer_changelist")
    for typed in ("09012345678", "090 1234 5678", "090-1234-5678"):
        # when
        response = client.get(url, {"q": typed})
        # then
        assert [row.customer_id for row in response.context["cl"].result_list] == ["C1"], typed


def test_stored_phone_digits_follow_the_phone_whoever_writes_it():
    # Given a customer found by their phone
    customer = CustomerFactory.create(phone="090-1111-2222")
    assert customer.phone_digits == "09011112222"
    # When the phone is changed by a plain UPDATE (an admin edit, a data fix), not through any service
    Customer.objects.filter(pk=customer.pk).update(phone="+81 (3) 3333-4444")
    # Then the database recomputed the digits, and search finds the new number, not the old one
    assert Customer.objects.get(pk=customer.pk).phone_digits == "81333334444"
    assert list(customer_search(Customer.objects.all(), "81-3-3333-4444")) == [customer]
    assert list(customer_search(Customer.objects.all(), "090-1111-2222")) == []
