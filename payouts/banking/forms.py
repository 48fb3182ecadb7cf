"""Forms of payouts.banking. `BankAccountForm` is plain (no model): the customer application page and the
agent form embed it and hand `account_input()` to `services.bank_account_record`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from claims.models import Program
from payouts.banking.conf import senders
from payouts.banking.models import AccountType
from payouts.banking.services import AccountInput
from payouts.zengin import BankAccount as ZenginAccount
from payouts.zengin import BankAccountError
from support_portal.core.business_days import JST

# validate_bank_account's field names → this form's fields.
_FIELD_FOR_ERROR = {
    "bank_code": "bank_code",
    "branch_code": "branch_code",
    "account_type": "account_type",
    "account_number": "account_number",
    "holder_kana": "holder_name",
    "bank_name_kana": "bank_name",
    "branch_name_kana": "branch_name",
}


class BankAccountForm(forms.Form):
    """A bank account as a customer types it: full-width digits, hiragana/katakana names are accepted and
    converted (half-width kana for the Zengin file); every problem is shown on its field."""

    bank_code = forms.CharField(label=_("Bank code (4 digits)"), max_length=8)
    bank_name = forms.CharField(label=_("Bank name (kana)"), max_length=30, required=False)
    branch_code = forms.CharField(label=_("Branch code (3 digits)"), max_length=6)
    branch_name = forms.CharField(label=_("Branch name (kana)"), max_length=30, required=False)
    account_type = forms.ChoiceField(label=_("Account type"), choices=AccountType.choices, initial=AccountType.ORDINARY)
    account_number = forms.CharField(
        label=_("Account number (up to 7 digits)"),
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "off", "inputmode": "numeric"}),
    )
    holder_name = forms.CharField(label=_("Account holder name (katakana, as on the passbook)"), max_length=60)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            ZenginAccount.from_input(**self._values(data))
        except BankAccountError as exc:
            for field, message in exc.errors.items():
                self.add_error(_FIELD_FOR_ERROR.get(field), message)
        return data

    @staticmethod
    def _values(data: dict[str, Any]) -> dict[str, str]:
        return {
            "bank_code": data.get("bank_code", ""),
            "branch_code": data.get("branch_code", ""),
            "account_type": data.get("account_type", ""),
            "account_number": data.get("account_number", ""),
            "holder_name": data.get("holder_name", ""),
            "bank_name": data.get("bank_name", ""),
            "branch_name": data.get("branch_name", ""),
        }

    def account_input(self) -> AccountInput:
        """What the service records (call after is_valid())."""
        return AccountInput(**self._values(self.cleaned_data))


class ZenginExportForm(forms.Form):
    transfer_date = forms.DateField(label=_("Transfer date (取組日)"), widget=forms.DateInput(attrs={"type": "date"}))
    sender = forms.ChoiceField(label=_("Sender account (振込依頼人)"))
    program = forms.ModelChoiceField(
        label=_("Program (empty = every program)"), queryset=Program.objects.order_by("slug"), required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        sender_field: Any = self.fields["sender"]
        sender_field.choices = [(key, sender.label) for key, sender in senders().items()]
        self.fields["transfer_date"].initial = timezone.localdate(timezone=JST) + dt.timedelta(days=1)


class ResultUploadForm(forms.Form):
    file = forms.FileField(label=_("File"))

    MAX_BYTES = 200 * 1024 * 1024

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError(_("The file is too large."))
        return upload
