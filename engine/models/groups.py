"""Names of the module groups a run can train (kept free of heavy imports for the app)."""

from typing import Literal


ModuleGroup = Literal["vision", "projector", "language"]
MODULE_GROUPS: tuple[ModuleGroup, ...] = ("vision", "projector", "language")
