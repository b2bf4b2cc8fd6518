from django import template

from billing.selectors import plan_price

register = template.Library()


@register.filter
def price_in(plan, country):
    """The plan's price for a customer of this billing country (``plan|price_in:country``)."""
    return plan_price(plan=plan, country=country)
