"""The `huihua` command: serve, emulator, user, sessions, purge, doctor.

One module a concern: `base` (the group, settings, output), `serve` (serve, emulator), `people`
(user, sessions), `maintenance` (purge, doctor). Importing them registers their commands.
"""

from . import maintenance, people, serve
from .base import main

__all__ = ["main", "maintenance", "people", "serve"]
