from django.contrib import admin
from django.urls import include, path

from accounts.views import home

urlpatterns = [
    path("", home, name="home"),
    path("", include("accounts.urls")),
    path("", include("subscriptions.urls")),
    path("", include("billing.urls")),
    path("comptes/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]

# allauth's rate limits (login, signup, password reset...) answer 429 with this view.
handler429 = "accounts.views.too_many_requests"
