#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def _use_uvloop_for_serve() -> None:
    """`serve` runs Daphne and the engine on one loop: make it uvloop when installed.

    It must happen here, before Django's set-up imports daphne, which creates the loop that
    Twisted's reactor will run on.
    """
    if sys.argv[1:2] != ["serve"] or os.environ.get("CENTRALINO_UVLOOP", "1") == "0":
        return
    try:
        import asyncio

        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def main():
    """Run administrative tasks."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "operator_panel.settings")
    _use_uvloop_for_serve()
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. Are you sure it's installed and "
            "available on your PYTHONPATH environment variable? Did you "
            "forget to activate a virtual environment?"
        ) from exc
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
