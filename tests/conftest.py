import os

import pytest

from tests.db_roles import app_role_create


def pytest_configure(config: pytest.Config) -> None:
    # The suite runs on real PostgreSQL and Redis (`make test` starts throwaway ones). Refuse to run
    # silently on the embedded SQLite default, which would skip the database triggers and COPY paths.
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        raise pytest.UsageError("DATABASE_URL must point at PostgreSQL: run the suite with `make test`.")
    if not os.environ.get("REDIS_URL"):
        raise pytest.UsageError("REDIS_URL must point at Redis: run the suite with `make test`.")


@pytest.fixture
def app_role(db: None) -> str:
    """A database role like production's application role (tests/db_roles.py); SET ROLE to it with as_role."""
    return app_role_create()
