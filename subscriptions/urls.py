from django.urls import path

from subscriptions import views

app_name = "subscriptions"
urlpatterns = [
    path("offres/", views.plans, name="plans"),
    path("offres/<slug:code>/souscrire/", views.subscribe, name="subscribe"),
    path("compte/abonnement/", views.billing, name="billing"),
    path("compte/abonnement/<int:pk>/annuler/", views.cancel, name="cancel"),
    path("compte/abonnement/<int:pk>/reactiver/", views.reactivate, name="reactivate"),
    path("compte/abonnement/<int:pk>/payer/", views.pay_now, name="pay_now"),
    path("compte/abonnement/<int:pk>/renouveler/", views.restart, name="restart"),
    path("compte/resilier/", views.cancel_shortcut, name="cancel_shortcut"),
]
