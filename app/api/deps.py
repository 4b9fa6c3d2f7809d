"""Parameters the routers share.

Routes open their database session in their body (`with session_scope()`), not through a dependency
with `yield`: a sync dependency's clean-up runs on the same thread pool as the routes, so under load
finished requests could wait for a thread while holding the connections the running ones wait for.
"""

from typing import Annotated

from fastapi import Path

RunId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The run's id.")]
SweepId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The sweep's id.")]
