"""Prepare the Django peer: migrate, create the user, and print N valid session keys.

Sessions are made by Django's own login machinery (django.test.Client.force_login, which calls
django.contrib.auth.login against the configured SESSION_ENGINE), so they are exactly what a
real login leaves behind, without paying N PBKDF2 verifications before the benchmark starts.

    python -m django_peer.seed USERNAME PASSWORD N   -> one session key per line on stdout
"""

import os
import sys


def main() -> None:
    username, password, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_peer.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0, interactive=False)
    users = get_user_model()
    user = users.objects.filter(username=username).first()
    if user is None:
        user = users.objects.create_user(username=username, password=password)
    keys = []
    for _ in range(count):
        client = Client()
        client.force_login(user)
        keys.append(client.cookies[settings.SESSION_COOKIE_NAME].value)
    sys.stdout.write("\n".join(keys) + "\n")


if __name__ == "__main__":
    main()
