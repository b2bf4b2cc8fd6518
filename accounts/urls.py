from django.urls import path

from accounts import views

app_name = "accounts"
urlpatterns = [
    path("compte/", views.profile, name="profile"),
    path("langue/", views.set_language, name="set_language"),
    path("compte/donnees/", views.personal_data, name="data"),
    path("compte/donnees/telecharger/", views.personal_data_download, name="data_download"),
    path("compte/donnees/supprimer/", views.account_delete_confirm, name="delete"),
]
