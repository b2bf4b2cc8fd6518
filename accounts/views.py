from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_POST

from accounts.forms import ProfileForm, billing_details_complete
from accounts.models import User
from accounts.selectors import customer_data_export, deletion_page
from accounts.services import AccountDeletionError, account_delete


def remember_language(response, language):
    """The language cookie, with Django's LANGUAGE_COOKIE_* settings (as its set_language)."""
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN,
        secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
        samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )
    return response


def home(request):
    return redirect("subscriptions:billing" if request.user.is_authenticated
                    else "subscriptions:plans")


@login_required
def profile(request):
    # A copy: a refused form leaves the logged-in customer (and what the page shows) as saved.
    form = ProfileForm(request.POST or None, instance=User.objects.get(pk=request.user.pk))
    if request.method == "POST" and form.is_valid():
        language = form.save().preferred_language
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
        messages.success(request, _("Votre profil a été enregistré."))
        return remember_language(redirect("accounts:profile"), language)
    return render(request, "accounts/profile.html", {
        "form": form,
        "billing_details_complete": billing_details_complete(request.user),
    })


@require_POST
def set_language(request):
    """The header's language switch; a logged-in customer's choice is kept on their profile
    (it is also the language of their emails)."""
    language = request.POST.get("language")
    if language not in dict(settings.LANGUAGES):
        language = settings.LANGUAGE_CODE
    if request.user.is_authenticated and request.user.preferred_language != language:
        request.user.preferred_language = language
        request.user.save(update_fields=["preferred_language"])
    next_url = request.POST.get("next", "/")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        next_url = "/"
    return remember_language(HttpResponseRedirect(next_url), language)


def too_many_requests(request, exception=None):
    """allauth's rate limits answer with this page (config.urls.handler429)."""
    return render(request, "allauth/429.html", status=429)


@login_required
def personal_data(request):
    """"Mes données": download them, or delete the account."""
    return render(request, "accounts/data.html")


@login_required
def personal_data_download(request):
    """The logged-in customer's own data as a JSON file (GET: it changes nothing)."""
    data = customer_data_export(customer=request.user)
    response = JsonResponse(data, json_dumps_params={"indent": 2, "ensure_ascii": False})
    filename = f"mes-donnees-{request.user.customer_number}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


class AccountDeleteForm(forms.Form):
    password = forms.CharField(
        label=_lazy("Votre mot de passe"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_password(self):
        password = self.cleaned_data["password"]
        if not self.user.check_password(password):
            raise forms.ValidationError(_("Mot de passe incorrect."))
        return password


@sensitive_post_parameters("password")
@login_required
def account_delete_confirm(request):
    """The confirmation page (GET changes nothing); the POST, with the password, deletes."""
    form = AccountDeleteForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            account_delete(customer=request.user)
        except AccountDeletionError as error:
            form.add_error(None, str(error))
        else:
            logout(request)
            messages.success(request, _("Votre compte a été supprimé. Vos factures sont "
                                        "conservées, anonymisées, comme la loi l'exige."))
            return redirect("home")
    running = deletion_page(customer=request.user, now=timezone.now())
    return render(request, "accounts/delete_confirm.html", {
        "form": form,
        "running": running,
        "runs_on": [s for s in running if s.runs_until],
    })
