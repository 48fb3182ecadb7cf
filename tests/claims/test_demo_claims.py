"""`manage.py demo_claims`: the seven programs open and run, claims in the review states, idempotent."""

import io

import pytest
from django.core.management import call_command

from claims.models import Claim, ClaimDecision, ClaimStatus, Policy, Program
from tests.claims.test_program_run import premium_member_with_charges


@pytest.mark.django_db
def test_demo_claims_opens_runs_and_decides_once():
    # Given five members who applied for login-outage compensation and one who did not
    for _ in range(5):
        premium_member_with_charges()
    premium_member_with_charges(apply=False)

    # When the demo command runs twice
    call_command("demo_claims", stdout=io.StringIO())
    statuses = dict(Claim.objects.values_list("subject", "status"))
    decisions = ClaimDecision.objects.count()
    call_command("demo_claims", stdout=io.StringIO())

    # Then every template is open, and login-outage has claims in the review states
    assert set(Program.objects.filter(slug__in=Policy.values).values_list("status", flat=True)) == {"open"}
    assert sorted(statuses.values()) == sorted(
        [
            ClaimStatus.APPROVED,
            ClaimStatus.REJECTED,
            ClaimStatus.INFO_REQUESTED,
            ClaimStatus.APPROVED,  # ¥1,650 is below the template's second-approval threshold
            ClaimStatus.PENDING_REVIEW,
            ClaimStatus.COMPUTED,  # did not apply: not eligible, never sent to review
        ]
    )
    # And the second run changed nothing
    assert dict(Claim.objects.values_list("subject", "status")) == statuses
    assert ClaimDecision.objects.count() == decisions == 4
