"""Puts the test suite's loopback guard into every Python subprocess a test starts.

``tests/conftest.py`` adds this folder to ``PYTHONPATH``; Python imports ``sitecustomize`` at
start-up. It does nothing unless ``OUTCROP_TEST_LOOPBACK_LOG`` is set.
"""

import os

if os.environ.get("OUTCROP_TEST_LOOPBACK_LOG"):
    import loopback_guard

    loopback_guard.install(os.environ["OUTCROP_TEST_LOOPBACK_LOG"])
