"""ImportRun in the admin: the read-only history of file loads and the "Upload files" screen."""

from pathlib import PurePath
from typing import Any, BinaryIO, cast

from django.contrib import admin
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from support_portal.core.admin_tools import ReadOnlyAdmin
from support_portal.core.imports.forms import ImportUploadForm
from support_portal.core.imports.service import records_import
from support_portal.core.models import ImportRun

UPLOAD_PERMISSION = "core.add_importrun"
# The preview page lists at most this many errors per file; the counts are always exact.
PREVIEW_ERRORS_PER_FILE = 1_000


RUN_FIELDS: list[str] = [
    "file_name",
    "status",
    "source",
    "actor",
    "actor_label",
    "sha256",
    "started_at",
    "finished_at",
    "rows_read",
    "rows_inserted",
    "rows_updated",
    "error_count",
    "errors_table",
]


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdmin):  # uploads go through get_urls
    list_display = [
        "file_name",
        "status",
        "rows_read",
        "rows_inserted",
        "rows_updated",
        "error_count",
        "actor",
        "source",
        "started_at",
        "finished_at",
    ]
    list_filter = ["status", "source", "file_name"]
    search_fields = ["file_name", "sha256"]
    date_hierarchy = "started_at"
    list_select_related = ["actor"]
    fields = tuple(RUN_FIELDS)
    readonly_fields = RUN_FIELDS

    @admin.display(description=_("errors"))
    def errors_table(self, run: ImportRun) -> str:
        if not run.errors:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((error.get("line"), error.get("column"), error.get("reason")) for error in run.errors),
        )
        note = ""
        if run.error_count > len(run.errors):
            note = format_html(
                "<p>{}</p>",
                _("Showing the first %(shown)s of %(total)s errors.")
                % {"shown": len(run.errors), "total": run.error_count},
            )
        return format_html(
            "<table><thead><tr><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>{}",
            _("line"),
            _("column"),
            _("reason"),
            rows,
            note,
        )

    def get_urls(self) -> list[URLPattern]:
        upload = path(
            "upload/",
            self.admin_site.admin_view(self.upload_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_upload",
        )
        return [upload, *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {**(extra_context or {}), "can_upload": request.user.has_perm(UPLOAD_PERMISSION)}
        return super().changelist_view(request, extra_context=context)

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(UPLOAD_PERMISSION):
            raise PermissionDenied
        result = None
        if request.method == "POST":
            form = ImportUploadForm(request.POST, request.FILES)
            if form.is_valid():
                uploads = {
                    PurePath(upload.name or "").name: cast(BinaryIO, upload)
                    for upload in form.cleaned_data["csv_files"]
                }
                result = records_import(
                    files=uploads,
                    actor=cast(User, request.user),
                    source=ImportRun.Source.ADMIN,
                    dry_run=form.cleaned_data["validate_only"],
                )
        else:
            form = ImportUploadForm()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Upload files"),
            "form": form,
            "result": result,
            "outcomes": [
                {"outcome": outcome, "shown_errors": outcome.errors[:PREVIEW_ERRORS_PER_FILE]}
                for outcome in (result.files if result is not None else ())
            ],
        }
        return TemplateResponse(request, "admin/core/importrun/upload.html", context)
