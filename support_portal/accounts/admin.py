"""Security in the admin: sign-in events and data exports (read-only), and the audit viewer screen."""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from support_portal.accounts.audit_trail import audit_timeline, timeline_csv
from support_portal.accounts.models import ExportRecord, SecurityEvent
from support_portal.accounts.services import export_audit_record
from support_portal.core.admin_tools import ReadOnlyAdmin

AUDIT_TRAIL_PERMISSION = "accounts.view_audit_trail"


class AuditTrailForm(forms.Form):
    kind = forms.ChoiceField(label=_("object"), choices=[("claim", _("claim")), ("payout", _("payout"))])
    object_id = forms.IntegerField(label=_("id"), min_value=1, max_value=2**63 - 1)


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "username", "user", "ip"]
    list_filter = ["kind"]
    search_fields = ["=username", "=ip"]
    date_hierarchy = "at"
    list_select_related = ["user"]
    fields = readonly_fields = ("at", "kind", "username", "user", "ip", "detail")

    def get_urls(self) -> list[URLPattern]:
        trail = path(
            "audit-trail/",
            self.admin_site.admin_view(self.audit_trail_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_audit_trail",
        )
        return [trail, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {**(extra_context or {}), "can_view_audit_trail": request.user.has_perm(AUDIT_TRAIL_PERMISSION)}
        return super().changelist_view(request, extra_context=context)

    def audit_trail_view(self, request: HttpRequest) -> HttpResponse:
        """For one claim or payout: who did what and when; `?export=csv` downloads it (audited)."""
        if not request.user.has_perm(AUDIT_TRAIL_PERMISSION):
            raise PermissionDenied
        form = AuditTrailForm(request.GET or None)
        entries = None
        not_found = False
        if form.is_valid():
            kind, object_id = form.cleaned_data["kind"], form.cleaned_data["object_id"]
            entries = audit_timeline(kind=kind, object_id=object_id)
            not_found = entries is None
            if entries is not None and request.GET.get("export") == "csv":
                export_audit_record(
                    actor=request.user,
                    what=f"audit trail of {kind} {object_id} (CSV)",
                    row_count=len(entries),
                )
                response = HttpResponse(timeline_csv(entries), content_type="text/csv; charset=utf-8")
                stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
                response["Content-Disposition"] = f'attachment; filename="audit-{kind}-{object_id}-{stamp}.csv"'
                return response
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Audit trail"),
            "form": form,
            "entries": entries,
            "not_found": not_found,
            "csv_query": request.GET.urlencode(),
        }
        return TemplateResponse(request, "admin/accounts/audit_trail.html", context)


@admin.register(ExportRecord)
class ExportRecordAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "what", "row_count"]
    search_fields = ["what"]
    date_hierarchy = "at"
    list_select_related = ["actor"]
    fields = readonly_fields = ("at", "actor", "what", "row_count")
