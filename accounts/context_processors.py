from django.conf import settings


def portal(request):
    return {"SUPPORT_EMAIL": settings.SUPPORT_EMAIL}
