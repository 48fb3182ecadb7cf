"""Fixtures for the ticket desk: a queue with a lead queue, an agent who works it, a manager."""

import pytest
from django.contrib.auth.models import Group, User

from support_portal.core.roles import roles_sync
from support_portal.tickets.models import Queue
from tests.factories import UserFactory
from tests.tickets.factories import QueueFactory


def staff(username: str, role: str) -> User:
    if not Group.objects.filter(name=role).exists():
        roles_sync()  # a transactional test before this one flushed the groups the migration made
    user = UserFactory.create(username=username, email=f"{username}@example.jp")
    user.groups.add(Group.objects.get(name=role))
    return User.objects.get(pk=user.pk)  # a fresh instance: has_perm caches per instance


@pytest.fixture
def lead_queue() -> Queue:
    return QueueFactory.create(name="リード", slug="lead", first_response_minutes=30, resolution_minutes=240)


@pytest.fixture
def queue(lead_queue: Queue) -> Queue:
    return QueueFactory.create(
        name="ログイン", slug="login", first_response_minutes=60, resolution_minutes=480, escalation_queue=lead_queue
    )


@pytest.fixture
def agent(queue: Queue) -> User:
    user = staff("agent-a", "agent")
    queue.members.add(user)
    return user


@pytest.fixture
def other_agent() -> User:
    return staff("agent-b", "agent")


@pytest.fixture
def manager() -> User:
    return staff("manager-m", "manager")
