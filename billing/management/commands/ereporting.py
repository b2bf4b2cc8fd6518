from datetime import date

from django.core.management.base import BaseCommand, CommandError

from billing.exports.ereporting import ereporting_csv, ereporting_json
from billing.exports.period import Period


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"Not an ISO date (YYYY-MM-DD): {value!r}") from error


class Command(BaseCommand):
    help = ("The e-reporting of consumer sales (DESIGN §14): per day of the business time "
            "zone and per VAT rate, net, VAT, transactions and payments received, on standard "
            "output, e.g. ereporting --from 2026-11-01 --to 2026-11-30 --format csv")

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
        parser.add_argument("--to", dest="end", required=True,
                            help="last day (included), YYYY-MM-DD")
        parser.add_argument("--format", choices=["csv", "json"], default="csv",
                            help="csv: ';' and decimal commas, for Excel; json: integer cents")

    def handle(self, *args, **options):
        start, end = _day(options["start"]), _day(options["end"])
        if end < start:
            raise CommandError(f"--to {end} is before --from {start}")
        period = Period(start, end)
        render = ereporting_json if options["format"] == "json" else ereporting_csv
        self.stdout.write(render(period), ending="")
