from django.urls import path

from billing.gateways import simulated_views

app_name = "simulated_provider"

urlpatterns = [
    path("tokens/", simulated_views.tokens, name="tokens"),
]
