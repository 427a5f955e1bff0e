"""The pieces of ``bench/run.py`` (the gateway benchmark). Not a test suite: nothing here is
collected by pytest, and CI never runs it."""
