from django.core.management.base import BaseCommand

from subscriptions.demo import ABROAD, CUSTOMERS, DEMO_PASSWORD, STAFF, UNPAID, load_demo


class Command(BaseCommand):
    help = "Load the demo plans and customers (safe to run again)."

    def handle(self, *args, **options):
        load_demo()
        self.stdout.write(f"Demo logins (password {DEMO_PASSWORD}):")
        for email, *_ in CUSTOMERS + UNPAID + ABROAD:
            self.stdout.write(f"  {email}")
        self.stdout.write(f"Admin: {STAFF[0]} / {STAFF[1]}")
