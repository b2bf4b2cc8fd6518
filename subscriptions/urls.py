from django.urls import path

from subscriptions import change_views, confirm_views, views, withdraw_views
from subscriptions.email_cancel_views import email_cancel

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
    path("compte/abonnement/<int:pk>/resiliation/", views.resiliation_receipt,
         name="resiliation_receipt"),
    path("compte/abonnement/<int:pk>/formule/", change_views.change_options,
         name="change_options"),
    path("compte/abonnement/<int:pk>/formule/<slug:code>/", change_views.change_confirm,
         name="change_confirm"),
    path("compte/abonnement/<int:pk>/formule/<slug:code>/programmer/",
         change_views.change_schedule, name="change_schedule"),
    path("compte/abonnement/<int:pk>/changement-prevu/annuler/", change_views.change_withdraw,
         name="change_withdraw"),
    path("resilier/<str:token>/", email_cancel, name="email_cancel"),
    path("compte/retractation/", withdraw_views.withdraw_shortcut, name="withdraw_shortcut"),
    path("compte/abonnement/<int:pk>/retractation/", withdraw_views.withdraw, name="withdraw"),
    path("compte/retractation/<int:pk>/accuse-de-reception/",
         withdraw_views.withdrawal_acknowledgement, name="withdrawal_acknowledgement"),
    path("compte/paiement/<str:token>/", confirm_views.confirm_payment, name="confirm_payment"),
    path("compte/paiement/<str:token>/authentification/",
         confirm_views.confirm_payment_challenge, name="confirm_payment_challenge"),
    path("compte/paiement/<str:token>/retour/", confirm_views.confirm_payment_return,
         name="confirm_payment_return"),
]
