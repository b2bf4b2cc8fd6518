"""The simulated provider's pages, mounted under ``/simulated-provider/`` (config/urls.py)."""

from django.urls import path

from billing.gateways import simulated_views

app_name = "simulated_provider"
urlpatterns = [
    path("tokens/", simulated_views.tokens, name="tokens"),
    path("authentification/", simulated_views.challenge, name="challenge"),
]
