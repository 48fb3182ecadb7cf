"""Fixtures for the API tests: keys with given scopes, and a client that sends them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from support_portal.api.services import CreatedApiKey, api_key_create
from tests.factories import UserFactory


def make_key(*scopes: str, name: str = "billing") -> CreatedApiKey:
    return api_key_create(name=name, scopes=list(scopes), actor=UserFactory.create(username="key-maker"))


def post_json(client: Client, path: str, body: Any, *, key: str | None, **headers: str):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return client.post(path, data=data, content_type="application/json", headers=headers)


def get_json(client: Client, path: str, *, key: str | None):
    headers = {"authorization": f"Bearer {key}"} if key is not None else {}
    return client.get(path, headers=headers)


@pytest.fixture
def ingest_key() -> CreatedApiKey:
    return make_key("ingest")


@pytest.fixture
def read_key() -> CreatedApiKey:
    return make_key("read", name="reporting")
