"""The one exception type users see.

Raise :class:`SplattalkError` for anything caused by the user's input or
environment (a missing file, a wrong model, a corrupt video). The CLI prints
its message without a traceback; everything else is a bug and keeps its
traceback.
"""


class SplattalkError(Exception):
    """An error the user can act on: say what was wrong, where, and what to do."""
