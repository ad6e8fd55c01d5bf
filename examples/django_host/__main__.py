"""``python -m examples.django_host book GUEST [--fail]``: create Django's tables if
missing, then POST the booking to the view and print the answer."""

from __future__ import annotations

import argparse
import os
import sys


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.django_host")
    parser.add_argument("verb", choices=["book"])
    parser.add_argument("guest")
    parser.add_argument("--fail", action="store_true", help="fail after the emit")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_host.settings")
    import django
    from django.core.management import call_command
    from django.test import Client

    django.setup()
    call_command("migrate", run_syncdb=True, verbosity=0)
    answer = Client().post("/bookings", {"guest": args.guest, "fail": "1" if args.fail else ""})
    print(answer.status_code, answer.content.decode())
    return 0 if answer.status_code == 201 else 1


if __name__ == "__main__":
    sys.exit(main())
