"""The one base class of every failure the harness anticipates.

A :class:`ReproError` is a problem the user can fix (a bad setting, a missing file, a checkpoint of
another run); its message is one line that names the fix. The command line prints it without a
traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ReproError(Exception):
    """An anticipated, user-fixable failure; its message is one line naming the fix."""
