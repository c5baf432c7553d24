#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "creatorcommerce.settings")
    # manage.py is the developer's tool: it defaults to development mode (the ASGI app and
    # Celery default to production). Operators set DEBUG=0 and SECRET_KEY explicitly.
    os.environ.setdefault("DEBUG", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
