"""Settings of the chaos benchmark's workers: the test settings, messages captured at the provider
boundary (bench/chaos_capture.py), a short notice lease so killed senders' attempts are recovered within
the run, and the capture file as the provider check."""

import os

from support_portal.settings.test import *  # noqa: F403

EMAIL_BACKEND = "bench.chaos_capture.CaptureEmailBackend"
PAYOUT_SMS_GATEWAY = "bench.chaos_capture.CaptureSmsGateway"
PAYOUT_NOTICE_PROVIDER_CHECK = (
    "bench.chaos_capture.provider_check" if os.environ.get("CHAOS_PROVIDER_CHECK", "1") == "1" else ""
)
PAYOUT_NOTICE_LEASE_SECONDS = int(os.environ.get("CHAOS_LEASE_SECONDS", "6"))
