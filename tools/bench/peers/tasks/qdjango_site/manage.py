#!/usr/bin/env python
"""manage.py of the Q (qdjango) bench site."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tools.bench.peers.tasks.qdjango_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
