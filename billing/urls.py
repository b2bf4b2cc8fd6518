from django.urls import path

from billing import views

app_name = "billing"
urlpatterns = [
    path("compte/carte/", views.card_update, name="card_update"),
]
