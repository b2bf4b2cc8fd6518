"""``{% load dates %}``: the filters of formats.dates."""

from django import template

from formats import dates

register = template.Library()

for _name in ("long_date", "long_datetime", "short_date", "short_datetime", "month_year"):
    register.filter(_name, getattr(dates, _name))
