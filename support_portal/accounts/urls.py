from django.urls import path

from support_portal.accounts import views

app_name = "accounts"

urlpatterns = [
    path("two-factor/setup/", views.enroll, name="enroll"),
    path("two-factor/", views.verify, name="verify"),
    path("two-factor/recovery-codes/", views.recovery_codes, name="recovery_codes"),
    path("two-factor/manage/", views.manage, name="manage"),
]
