from datetime import UTC, date, datetime

import pytest
from django.template import Context, Template
from django.utils import translation

from formats.dates import long_date, long_datetime, month_year, short_date, short_datetime


@pytest.fixture
def french():
    with translation.override("fr"):
        yield


@pytest.fixture
def english():
    with translation.override("en"):
        yield


def test_first_of_the_month_is_1er(french):
    assert long_date(date(2027, 6, 1)) == "1er juin 2027"
    assert long_date(date(2027, 6, 2)) == "2 juin 2027"
    assert long_date(date(2026, 12, 1)) == "1er décembre 2026"


def test_datetimes_are_read_in_the_business_time_zone(french):
    # 31 May 22:30 UTC is already 1 June in Paris (UTC+2).
    moment = datetime(2027, 5, 31, 22, 30, tzinfo=UTC)
    assert long_date(moment) == "1er juin 2027"
    assert long_datetime(moment) == "1er juin 2027 à 0 h 30"
    assert long_datetime(datetime(2027, 5, 10, 13, 0, tzinfo=UTC)) == "10 mai 2027 à 15 h 00"
    assert short_datetime(moment) == "01/06/2027 00:30"


def test_short_forms_never_abbreviate_a_month_in_french(french):
    assert short_date(date(2026, 6, 24)) == "24/06/2026"
    assert short_date(date(2026, 7, 24)) == "24/07/2026"
    assert month_year(date(2027, 7, 3)) == "juillet 2027"


def test_english_formats(english):
    assert long_date(date(2027, 6, 1)) == "June 1, 2027"
    assert long_datetime(datetime(2027, 5, 10, 13, 0, tzinfo=UTC)) == "May 10, 2027 at 3:00 PM"
    assert long_datetime(datetime(2027, 5, 10, 22, 5, tzinfo=UTC)) == "May 11, 2027 at 12:05 AM"
    assert short_date(date(2026, 11, 13)) == "2026-11-13"
    assert month_year(date(2027, 6, 1)) == "June 2027"


def test_empty_values_are_empty(french):
    assert long_date(None) == "" and long_datetime("") == "" and short_date(None) == ""


def test_template_filters(french):
    rendered = Template("{% load dates %}{{ d|long_date }} / {{ d|short_date }}").render(
        Context({"d": date(2027, 6, 1)}))
    assert rendered == "1er juin 2027 / 01/06/2027"
