from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import translation

from accounts.middleware import chosen_language


@receiver(user_logged_in)
def speak_the_customers_language_from_login_on(sender, request, user, **kwargs):
    """The login request itself was anonymous, so PreferredLanguageMiddleware could not apply
    the customer's language: apply it now, so the rest of this response (allauth's "signed in"
    message) is already in it. The language picked in the browser still wins."""
    if request is None or chosen_language(request) or not user.preferred_language:
        return
    translation.activate(user.preferred_language)
    request.LANGUAGE_CODE = translation.get_language()
