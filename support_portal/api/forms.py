from django import forms
from django.utils.translation import gettext_lazy as _

from support_portal.api.models import ApiScope


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(label=_("name"), max_length=100, help_text=_("The integration that uses it"))
    scopes = forms.MultipleChoiceField(label=_("scopes"), choices=ApiScope.choices, widget=forms.CheckboxSelectMultiple)
