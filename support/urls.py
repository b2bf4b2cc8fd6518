from django.urls import path

from support import views

app_name = "support"
urlpatterns = [
    path("compte/support/", views.request_list, name="list"),
    path("compte/support/nouvelle-demande/", views.request_create, name="create"),
    path("compte/support/<str:reference>/", views.request_detail, name="detail"),
]
