from django.urls import path

from support_portal.api.v1 import build_api

api_v1 = build_api()

urlpatterns = [path("v1/", api_v1.urls)]
