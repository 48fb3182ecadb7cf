"""API keys (one per integration) and the answers stored under an `Idempotency-Key`.

- `ApiKey` — `spk_<prefix>_<secret>`: the prefix is stored and shown (it names the key in the admin and
  in the audit trail, `api:<prefix>`), the whole key only as its SHA-256 (it is 32 random bytes, so a
  fast hash is enough; compared in constant time). Shown once, when created. Revoked keys stay as history.
- `IdempotencyRecord` — one per (key, Idempotency-Key): the request body's SHA-256 and the answer sent,
  so a retry gets the same answer and a reuse with another body is refused (409).
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ApiScope(models.TextChoices):
    INGEST = "ingest", _("Push source records (customers, subscriptions, charges, logins, submissions)")
    READ = "read", _("Read claim, payout and program figures")


@pghistory.track(
    pghistory.InsertEvent("insert"),
    # last_used_at moves on use (at most once a minute): not an audited change.
    pghistory.UpdateEvent("update", condition=pghistory.AnyChange(exclude=["last_used_at"])),
    pghistory.DeleteEvent("delete"),
    exclude=["secret_hash"],
)
class ApiKey(models.Model):
    name = models.CharField(_("name"), max_length=100, help_text=_("The integration that uses it"))
    prefix = models.CharField(_("prefix"), max_length=16, unique=True, editable=False)
    secret_hash = models.CharField(_("secret hash"), max_length=64, editable=False)
    scopes = models.JSONField(_("scopes"), default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("created by")
    )
    created_at = models.DateTimeField(_("created at"))
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("revoked by"),
    )

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["-created_at"]
        permissions = [("revoke_apikey", _("Can revoke an API key"))]

    def __str__(self) -> str:
        return f"{self.name} (spk_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class IdempotencyRecord(models.Model):
    api_key = models.ForeignKey(ApiKey, on_delete=models.PROTECT, related_name="+")
    key = models.CharField(_("idempotency key"), max_length=255)
    operation = models.CharField(_("operation"), max_length=64)
    body_sha256 = models.CharField(_("body SHA-256"), max_length=64)
    status_code = models.PositiveSmallIntegerField(_("status code"))
    response = models.JSONField(_("response"))
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            models.UniqueConstraint(fields=["api_key", "key"], name="api_idempotency_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} {self.key}"
