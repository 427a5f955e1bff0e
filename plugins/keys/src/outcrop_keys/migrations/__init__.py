"""Alembic migrations of the key store (``versions/``)."""

#: The newest revision; a test checks it against the scripts.
HEAD = "0004"
