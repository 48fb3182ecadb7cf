"""API keys: hashed at rest, shown once, compared in constant time, revocable, scoped; the admin screens."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from support_portal.api.models import ApiKey
from support_portal.api.services import ApiKeyRefused, api_key_authenticate, api_key_create, api_key_revoke
from support_portal.core.roles import roles_sync
from tests.api.conftest import make_key, post_json
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_new_key_is_stored_only_as_its_hash_and_named_by_its_prefix() -> None:
    created = make_key("ingest", "read")

    stored = ApiKey.objects.get(pk=created.api_key.pk)
    assert created.key.startswith(f"spk_{stored.prefix}_")
    assert stored.secret_hash == hashlib.sha256(created.key.encode()).hexdigest()
    assert created.key not in repr(created)
    assert stored.scopes == ["ingest", "read"]
    assert [f.name for f in ApiKey._meta.fields if created.key in str(getattr(stored, f.attname))] == []


def test_an_unknown_scope_or_no_scope_is_refused_and_nothing_is_stored() -> None:
    user = UserFactory.create()
    with pytest.raises(ApiKeyRefused):
        api_key_create(name="x", scopes=["admin"], actor=user)
    with pytest.raises(ApiKeyRefused):
        api_key_create(name="x", scopes=[], actor=user)
    assert ApiKey.objects.count() == 0


def test_authenticate_accepts_the_key_and_refuses_a_wrong_secret_an_unknown_prefix_and_a_revoked_key() -> None:
    created = make_key("ingest")
    prefix = created.api_key.prefix

    assert api_key_authenticate(key=created.key) == created.api_key
    assert api_key_authenticate(key=created.key[:-1] + ("A" if created.key[-1] != "A" else "B")) is None
    assert api_key_authenticate(key=f"spk_00000000_{created.key.split('_', 2)[2]}") is None
    assert api_key_authenticate(key="not-a-key") is None
    api_key_revoke(api_key_id=created.api_key.pk, actor=UserFactory.create())
    assert api_key_authenticate(key=created.key) is None
    assert ApiKey.objects.get(prefix=prefix).revoked_at is not None


def test_use_notes_last_used_at_at_most_once_a_minute() -> None:
    created = make_key("read")
    first = timezone.now()

    api_key_authenticate(key=created.key, now=first)
    api_key_authenticate(key=created.key, now=first + dt.timedelta(seconds=30))
    assert ApiKey.objects.get(pk=created.api_key.pk).last_used_at == first
    api_key_authenticate(key=created.key, now=first + dt.timedelta(seconds=61))
    assert ApiKey.objects.get(pk=created.api_key.pk).last_used_at == first + dt.timedelta(seconds=61)


def test_key_creation_and_revocation_are_audited_with_the_acting_user_and_no_hash() -> None:
    from pghistory.models import Events  # noqa: PLC0415

    maker = UserFactory.create(username="maker")
    created = api_key_create(name="billing", scopes=["ingest"], actor=maker)
    api_key_revoke(api_key_id=created.api_key.pk, actor=maker)
    api_key_authenticate(key=created.key)  # refused: revoked, no last-used write

    events = list(Events.objects.tracks(created.api_key).order_by("pgh_id"))
    assert [event.pgh_label for event in events] == ["insert", "update"]
    assert {event.pgh_context["user"] for event in events} == {maker.pk}
    assert {event.pgh_context["action"] for event in events} == {"api_key_create", "api_key_revoke"}
    assert ["secret_hash" in event.pgh_data for event in events] == [False, False]


def test_a_staff_session_is_no_api_authentication(client: Client) -> None:
    client.force_login(UserFactory.create(is_superuser=True))

    response = post_json(client, "/api/v1/ingest/customers", [{"customer_id": "C1"}], key=None)

    assert response.status_code == 401


def _manager(client: Client) -> None:
    roles_sync()
    user = UserFactory.create(username="mgr")
    user.groups.add(Group.objects.get(name="manager"))
    client.force_login(user)


def test_a_manager_creates_a_key_in_the_admin_and_sees_it_once(client: Client) -> None:
    _manager(client)
    url = reverse("admin:api_apikey_add")

    response = client.post(url, {"name": "billing system", "scopes": ["ingest"]})

    assert response.status_code == 200
    api_key = ApiKey.objects.get()
    shown = response.context["created"].key
    assert shown.startswith(f"spk_{api_key.prefix}_") and shown in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert api_key.created_by.username == "mgr"
    listing = client.get(reverse("admin:api_apikey_changelist")).content.decode()
    assert f"spk_{api_key.prefix}_…" in listing and shown not in listing


def test_a_manager_revokes_keys_with_the_admin_action(client: Client) -> None:
    _manager(client)
    live, other = make_key("ingest"), make_key("read", name="other")

    response = client.post(
        reverse("admin:api_apikey_changelist"),
        {"action": "revoke", "_selected_action": [live.api_key.pk]},
    )

    assert response.status_code == 302
    revoked_by = ApiKey.objects.get(pk=live.api_key.pk).revoked_by
    assert revoked_by is not None and revoked_by.username == "mgr"
    assert ApiKey.objects.get(pk=other.api_key.pk).revoked_at is None


def test_an_agent_can_neither_see_nor_create_keys(client: Client) -> None:
    roles_sync()
    agent = UserFactory.create(username="agent-1")
    agent.groups.add(Group.objects.get(name="agent"))
    client.force_login(agent)

    assert client.get(reverse("admin:api_apikey_changelist")).status_code == 403
    assert client.post(reverse("admin:api_apikey_add"), {"name": "x", "scopes": ["ingest"]}).status_code == 403
    assert ApiKey.objects.count() == 0
