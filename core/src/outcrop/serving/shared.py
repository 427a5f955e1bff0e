"""A directory the workers of one ``serve --workers N`` share, fresh for every start.

The supervisor creates it before any worker starts and removes it when the server stops; each
worker finds it in ``OUTCROP_SHARED_DIR``. Plugins keep cross-worker state there (metrics that
every worker adds to, like ``outcrop-prometheus``'s multiprocess files), so one scrape sees
every worker and a restart never counts a previous run's values.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

#: The environment variable that names the directory in every worker.
SHARED_DIR_ENV = "OUTCROP_SHARED_DIR"


@contextmanager
def shared_dir() -> Iterator[str]:
    """Create the directory, export it to the workers started inside, remove it after."""
    path = tempfile.mkdtemp(prefix="outcrop-workers-")
    previous = os.environ.get(SHARED_DIR_ENV)
    os.environ[SHARED_DIR_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(SHARED_DIR_ENV, None)
        else:
            os.environ[SHARED_DIR_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)
