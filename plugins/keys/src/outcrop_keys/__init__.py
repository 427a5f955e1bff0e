"""Outcrop plugin: virtual keys, teams, spend and budgets.

Keys and spend live in SQLite (default) or PostgreSQL (``DATABASE_URL``); the request path reads
an in-process cache and never waits on the database, except for one spend read per call on keys
with a budget.
"""
