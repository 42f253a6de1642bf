"""Make sure a local admin account exists, without a fixed default password."""

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create the 'admin' superuser if missing; print its password once."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("DJANGO_SUPERUSER_USERNAME", "admin"))

    def handle(self, *args, **options):
        User = get_user_model()
        username = options["username"]
        if User.objects.filter(username=username).exists():
            self.stdout.write(
                f"Admin account '{username}' exists. Forgot the password? "
                f"python manage.py changepassword {username}"
            )
            return
        given = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        password = given or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if given:
            self.stdout.write(f"Created admin account '{username}' with DJANGO_SUPERUSER_PASSWORD.")
        else:
            rule = "=" * 72
            self.stdout.write(
                self.style.SUCCESS(
                    f"\n{rule}\n"
                    f"  Created admin account. Log in at /admin/ as '{username}'\n"
                    f"  with password: {password}\n"
                    f"  (shown once; change it with: python manage.py changepassword {username})\n"
                    f"{rule}\n"
                )
            )
