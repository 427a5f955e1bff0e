"""Serving the app: hypercorn with Outcrop's transport limits, in one process or several.

``options`` (settings, hypercorn's config), ``connection`` (one client connection), ``worker``
(one server process), ``workers`` (``serve --workers N``). Import the submodules directly: the
CLI reads ``options`` without loading the server.
"""
