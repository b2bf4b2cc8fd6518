from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("compte/", views.profile, name="profile"),
    path("langue/", views.set_language, name="set_language"),
]
