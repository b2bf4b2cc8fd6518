from django import template

from billing.selectors import plan_price

register = template.Library()


@register.filter
def price_for(plan, customer):
    """The plan's price for this customer (``plan|price_for:user``)."""
    return plan_price(plan=plan, customer=customer)
