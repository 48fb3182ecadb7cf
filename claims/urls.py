from django.urls import path

from claims import views

app_name = "claims"

urlpatterns = [
    path("<str:token>/", views.apply, name="apply"),
    path("<str:token>/done/<str:receipt>/", views.apply_done, name="apply_done"),
    path("<str:token>/new-link/", views.apply_resend, name="apply_resend"),
]
