"""How this package runs one of its own modules in a child process: with the installed
code, whatever folder the child starts in.

``python -m MODULE`` puts the current folder first on ``sys.path``, so a ``hodei_stream``
folder there (another checkout of this project, or a user's own folder of that name) would
shadow the installed package and the child would run that code, or fail to import.
Python 3.11's ``-P`` leaves the folder out; on 3.10 a ``-c`` drops that first entry before
it runs the module.  The child keeps the current folder as its working folder (a relative
``-o FILE`` still means what the user typed).
"""

from __future__ import annotations

import sys


def module_command(module: str) -> list[str]:
    """This interpreter running ``module`` as ``__main__``, the current folder not on its path."""
    if sys.version_info >= (3, 11):
        return [sys.executable, "-P", "-m", module]
    run = f"import runpy, sys; del sys.path[0]; runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    return [sys.executable, "-c", run]
