from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from legal.selectors import terms_current, terms_published, terms_upcoming


def terms(request):
    """The terms in force, public (footer link "Conditions d'abonnement")."""
    now = timezone.now()
    return render(request, "legal/terms.html", {
        "version": terms_current(now=now),
        "upcoming": terms_upcoming(now=now),
    })


def terms_version(request, pk):
    """Any published version (the email about a new version links here before its date)."""
    version = terms_published(pk=pk)
    if version is None:
        raise Http404
    current = terms_current()
    return render(request, "legal/terms.html", {
        "version": version,
        "is_current": current is not None and current.pk == version.pk,
        "current": current,
        "single": True,
    })
