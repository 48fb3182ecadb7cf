"""Settings of the Celery worker subprocesses in the payouts fault tests: the test settings, with mail
written to files (PAYOUT_TEST_MAIL_DIR) so the test can count messages and Message-IDs across processes,
and a short notice lease so a killed sender's notices are taken over within the test."""

import os

from support_portal.settings.test import *  # noqa: F403

EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_FILE_PATH = os.environ.get("PAYOUT_TEST_MAIL_DIR", "/tmp/payout-test-mail")
PAYOUT_NOTICE_LEASE_SECONDS = 3
