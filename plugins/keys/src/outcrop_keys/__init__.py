"""Outcrop plugin: virtual keys, teams, spend and budgets.

Keys and spend live in SQLite (default) or PostgreSQL (``DATABASE_URL``); the request path reads
an in-process cache and never waits on the database, except for one spend read per call on keys
with a budget.

Other plugins (the admin page, ``outcrop-admin``) use this Python API: ``plugin.service_for``
(a gateway's ``KeyService``: ``engine``, ``settings``, ``pending``, ``refresh()``,
``admin_principal()``), ``manage`` (the operations behind the management API, on the service's
engine, in a worker thread) and ``schema`` (the tables, for read-only reports).
"""
