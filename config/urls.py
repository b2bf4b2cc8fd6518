from django.contrib import admin
from django.urls import include, path

from accounts.admin import admin_login
from accounts.views import home
from subscriptions.webhook_views import stripe_webhook

urlpatterns = [
    path("", home, name="home"),
    path("", include("accounts.urls")),
    path("", include("subscriptions.urls")),
    path("", include("billing.urls")),
    path("", include("legal.urls")),
    path("", include("support.urls")),
    path("comptes/", include("allauth.urls")),
    # Stands for the simulated payment provider's own servers (DESIGN §13).
    path("simulated-provider/", include("billing.gateways.simulated_urls")),
    path("webhooks/stripe/", stripe_webhook, name="stripe_webhook"),
    # Before the admin's own login: staff sign in through allauth and its rate limits.
    path("admin/login/", admin_login, name="admin_login"),
    path("admin/", admin.site.urls),
]

# allauth's rate limits (login, signup, password reset...) answer 429 with this view.
handler429 = "accounts.views.too_many_requests"
