import pytest

from support_portal.core.business_days import BusinessCalendar


@pytest.fixture(scope="session")
def calendar() -> BusinessCalendar:
    """National holidays and the bank closure only (no company closed days), 2020-2030."""
    return BusinessCalendar(first_year=2020, last_year=2030)
