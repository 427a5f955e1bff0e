"""``outcrop.server:app``: the app server workers import (``serve --workers N``).

The config path comes from ``OUTCROP_CONFIG``, set by ``outcrop serve``. A worker of a
supervisor (any server's) ends with it (``outcrop.serving.parent``).
"""

import os

from .app import create_app
from .gcfreeze import freeze_after_startup
from .logs import configure_logging
from .serving.parent import SUPERVISOR_ENV, end_with_parent, supervisor_pid, watch_parent

if os.environ.get(SUPERVISOR_ENV):
    supervisor = supervisor_pid()
    if not end_with_parent(supervisor):  # no death signal here: poll the parent instead
        watch_parent(supervisor)
configure_logging(os.environ.get("OUTCROP_LOG_LEVEL", "INFO"))
app = freeze_after_startup(create_app(os.environ.get("OUTCROP_CONFIG")))
