from django.utils.translation import gettext as _


def decline_message(code: str) -> str:
    """What the customer reads when their card is refused."""
    not_authenticated = _("Le paiement n'a pas été confirmé auprès de votre banque : rien "
                          "n'a été débité.")
    messages = {
        "insufficient_funds": _("Paiement refusé : provision insuffisante. Essayez une autre "
                                "carte ou contactez votre banque."),
        "expired_card": _("Paiement refusé : cette carte a expiré. Merci d'utiliser une carte "
                          "valide."),
        "incorrect_number": _("Le numéro de carte est invalide."),
        "provider_error": _("Notre prestataire de paiement est momentanément indisponible. "
                            "Aucun montant n'a été débité ; merci de réessayer dans quelques "
                            "minutes."),
        "no_card": _("Aucune carte n'est enregistrée sur votre compte."),
        "authentication_abandoned": _("La confirmation auprès de votre banque n'a pas été "
                                      "terminée : le paiement a été annulé et rien n'a été "
                                      "débité."),
        "setup_authentication_failed": _("Votre banque n'a pas confirmé cette carte : elle n'a "
                                         "pas été enregistrée. Essayez une autre carte."),
        "authentication_failed": not_authenticated,  # simulated provider
        "payment_intent_authentication_failure": not_authenticated,  # Stripe
    }
    return messages.get(
        code, _("Paiement refusé par votre banque. Essayez une autre carte ou contactez-la.")
    )
