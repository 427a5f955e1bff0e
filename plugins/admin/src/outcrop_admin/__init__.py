"""Outcrop plugin: the admin web page at /ui (keys, teams, spend, calls, models), built on
``outcrop-keys``. Server-rendered HTML (Jinja2) that works without JavaScript."""
