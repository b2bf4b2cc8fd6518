from django.urls import path

from legal import views

app_name = "legal"
urlpatterns = [
    path("conditions/", views.terms, name="terms"),
    path("conditions/version/<int:pk>/", views.terms_version, name="terms_version"),
]
