"""The admin's upload form: one or more small CSV files and a preview switch."""

from pathlib import PurePath
from typing import Any

from django import forms
from django.core.files.uploadedfile import UploadedFile
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

# Uploads are for corrections and small batches; bulk loads go through `import_records`.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".csv,text/csv"}))
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[UploadedFile]:
        clean_one = super().clean
        if isinstance(data, list | tuple):
            return [clean_one(item, initial) for item in data]
        return [clean_one(data, initial)]


class ImportUploadForm(forms.Form):
    csv_files = MultipleFileField(
        label=_("CSV files"),
        help_text=_("customers.csv, plans.csv, subscriptions.csv, … (the file names of the data exchange formats)"),
    )
    validate_only = forms.BooleanField(
        label=_("Validate only (preview: nothing is saved)"), required=False, initial=True
    )

    def clean_csv_files(self) -> list[UploadedFile]:
        files: list[UploadedFile] = self.cleaned_data["csv_files"]
        total = sum(upload.size or 0 for upload in files)
        if total > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The files total %(total)s; at most %(limit)s can be uploaded. Use the import_records command."),
                params={"total": filesizeformat(total), "limit": filesizeformat(MAX_UPLOAD_BYTES)},
                code="too_large",
            )
        names = [PurePath(upload.name or "").name for upload in files]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise forms.ValidationError(
                _("The same file name was chosen twice: %(names)s"),
                params={"names": ", ".join(repeated)},
                code="repeated",
            )
        return files
