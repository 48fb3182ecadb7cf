from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from support_portal.customers.models import PaymentMethod
from support_portal.identity.models import IdentityRecoveryCase, RecoveryStatus


class OpenCaseForm(forms.ModelForm):
    class Meta:
        model = IdentityRecoveryCase
        fields = ["customer", "ticket"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        customer = cleaned.get("customer")
        if (
            customer is not None
            and IdentityRecoveryCase.objects.filter(
                customer=customer, status__in=[RecoveryStatus.OPEN, RecoveryStatus.LOCKED]
            ).exists()
        ):
            raise forms.ValidationError(_("This customer already has an open or locked identity recovery case."))
        return cleaned


class DateInput(forms.DateInput):
    input_type = "date"


class VerifyForm(forms.Form):
    """What the caller says, typed by the agent; blank means the caller did not know."""

    charge_amount_jpy = forms.IntegerField(
        label=_("Last charge amount (JPY)"), required=False, min_value=0, help_text=_("As the caller states it.")
    )
    charge_date = forms.DateField(label=_("Last charge date"), required=False, widget=DateInput)
    payment_method = forms.ChoiceField(
        label=_("Payment method of the last charge"),
        required=False,
        choices=[("", "---------"), *PaymentMethod.choices],
    )
    phone = forms.CharField(label=_("Phone number"), required=False, max_length=32, help_text=_("Any hyphenation."))
    new_email = forms.EmailField(
        label=_("New contact email"), help_text=_("The password reset link is sent here when verification passes.")
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))
