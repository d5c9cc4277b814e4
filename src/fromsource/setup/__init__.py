"""``fromsource setup``: the client configuration that points pip, uv, poetry, pdm and
``.netrc`` at this index.

Pure planning (:func:`plan_setup` over file texts) is apart from the I/O
(:mod:`fromsource.setup.files`), so every edit is tested as text in, text out.
"""

from fromsource.indexclient import Credentials
from fromsource.setup.model import (
    DEFAULT_NAME,
    DEFAULT_REPOS,
    TARGETS,
    Change,
    IndexSpec,
    Plan,
    Source,
    Target,
    index_spec,
    mask,
)
from fromsource.setup.paths import Locations, locations
from fromsource.setup.plan import SetupRequest, plan_setup, purge_commands

__all__ = [
    "DEFAULT_NAME",
    "DEFAULT_REPOS",
    "TARGETS",
    "Change",
    "Credentials",
    "IndexSpec",
    "Locations",
    "Plan",
    "SetupRequest",
    "Source",
    "Target",
    "index_spec",
    "locations",
    "mask",
    "plan_setup",
    "purge_commands",
]
