from django import template

from notifications.selectors import emails_failed

register = template.Library()


@register.simple_tag
def failed_email_count() -> int:
    return emails_failed().count()
