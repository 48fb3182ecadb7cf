from django.contrib import admin

from claims.models import Program, Submission
from support_portal.core.admin_tools import BigTableAdmin
from support_portal.core.masking import mask_email


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "policy", "status"]
    list_filter = ["policy", "status"]
    search_fields = ["slug", "name"]


@admin.register(Submission)
class SubmissionAdmin(BigTableAdmin):
    list_display = ["submission_id", "program", "subject", "submitted_at", "channel", "masked_contact", "payout_method"]
    list_filter = ["program", "channel", "payout_method"]
    list_select_related = ["program"]
    search_fields = ["=submission_id", "=subject"]

    @admin.display(description="contact")
    def masked_contact(self, obj: Submission) -> str:
        return mask_email(obj.contact_email)
