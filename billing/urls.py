from django.urls import path

from billing import views

app_name = "billing"
urlpatterns = [
    path("compte/carte/", views.card_update, name="card_update"),
    path("compte/carte/verification/", views.card_verification, name="card_verification"),
    path("compte/carte/verification/retour/", views.card_verification_return,
         name="card_verification_return"),
    path("compte/factures/<str:number>/", views.invoice_detail, name="invoice"),
    path("compte/factures/<str:number>/pdf/", views.invoice_pdf_download,
         name="invoice_pdf"),
    path("compte/avoirs/<str:number>/", views.credit_note_detail, name="credit_note"),
    path("compte/avoirs/<str:number>/pdf/", views.credit_note_pdf_download,
         name="credit_note_pdf"),
]
