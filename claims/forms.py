"""The customer application form: fields depend on the program (payout methods, coupon details)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from claims.models import PayoutMethod, Policy, Program
from support_portal.core.demo.vocabulary import PREFECTURES


class ApplicationForm(forms.Form):
    contact_email = forms.EmailField(
        label=_("Email address for notices"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email"}),
    )
    payout_method = forms.ChoiceField(label=_("How you receive the money"), widget=forms.RadioSelect)

    def __init__(self, *args: Any, program: Program, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.program = program
        labels = dict(PayoutMethod.choices)
        allowed = [m for m in program.payout_methods or [] if m in labels]
        payout = self.fields["payout_method"]
        assert isinstance(payout, forms.ChoiceField)
        payout.choices = [(m, labels[m]) for m in allowed]
        if program.default_payout_method in allowed:
            payout.initial = program.default_payout_method
        elif len(allowed) == 1:
            payout.initial = allowed[0]
        if self.is_coupon:
            # The coupon notice (seed 001) asks for name, prefecture and travel date with the inquiry number.
            self.fields["applicant_name"] = forms.CharField(
                label=_("Name"), max_length=200, widget=forms.TextInput(attrs={"autocomplete": "name"})
            )
            self.fields["prefecture"] = forms.ChoiceField(
                label=_("Prefecture"), choices=[("", "---------"), *((p, p) for p in PREFECTURES)]
            )
            self.fields["travel_date"] = forms.DateField(
                label=_("Travel date (optional)"), required=False, widget=forms.DateInput(attrs={"type": "date"})
            )

    @property
    def is_coupon(self) -> bool:
        return self.program.policy == Policy.COUPON_OUTAGE_2023
