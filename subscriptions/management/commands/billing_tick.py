from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from subscriptions.jobs import run_due_jobs


class Command(BaseCommand):
    help = "Run every due billing job synchronously as of an instant (time travel for demos, "
    "support and tests), e.g. billing_tick --at 2027-01-31T09:00"

    def add_arguments(self, parser):
        parser.add_argument("--at", help="ISO date-time (business time zone if naive); "
                                         "default: now")

    def handle(self, *args, **options):
        now = timezone.now()
        if options["at"]:
            now = parse_datetime(options["at"])
            if now is None:
                raise CommandError(f"Not an ISO date-time: {options['at']!r}")
            if timezone.is_naive(now):
                now = timezone.make_aware(now)
        handled = run_due_jobs(now=now)
        self.stdout.write(f"As of {now.isoformat()}:")
        for name, count in handled.items():
            self.stdout.write(f"  {name}: {count}")
