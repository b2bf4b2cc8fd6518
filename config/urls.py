from django.contrib import admin
from django.urls import include, path

from accounts.admin import admin_login
from accounts.views import home

urlpatterns = [
    path("", home, name="home"),
    path("", include("accounts.urls")),
    path("", include("subscriptions.urls")),
    path("", include("billing.urls")),
    path("", include("legal.urls")),
    path("", include("support.urls")),
    path("comptes/", include("allauth.urls")),
    # The simulated provider's own pages (DESIGN §13): they stand for the provider's servers.
    path("simulated-provider/", include("billing.gateways.simulated_urls")),
    # Before the admin's own login: staff sign in through allauth and its rate limits.
    path("admin/login/", admin_login, name="admin_login"),
    path("admin/", admin.site.urls),
]

# allauth's rate limits (login, signup, password reset...) answer 429 with this view.
handler429 = "accounts.views.too_many_requests"
