"""The marker plugins use: ``@outcrop.hookimpl``."""

import pluggy

hookimpl = pluggy.HookimplMarker("outcrop")
