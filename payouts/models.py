"""Payouts and notices (built by the payouts issue)."""
