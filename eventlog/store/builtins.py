"""The built-in projectors: the one place that wires ``projections`` into a store."""

from __future__ import annotations

from collections.abc import Sequence

from eventlog.engine.protocols import Projector
from projections.adk_sessions import AdkSessionsProjector
from projections.artifacts import ArtifactsProjector
from projections.embeddings import EmbeddingsProjector
from projections.executions import ExecutionsProjector
from projections.langgraph_checkpoints import LangGraphCheckpointsProjector
from projections.pydantic_ai_steps import PydanticAIStepsProjector
from projections.run_state import RunStateProjector
from projections.session_listing import SessionListingProjector
from projections.status_index import StatusIndexProjector
from projections.tool_ledger import ToolLedgerProjector

__all__ = ["BUILTIN_PROJECTORS", "with_builtins"]

#: The built-in projectors, in the order they run (run state first: its state's lifecycle
#: rule refuses an event that moves a terminal run before any other view sees the event).
BUILTIN_PROJECTORS = (
    "run_state",
    "status_index",
    "session_listing",
    "executions",
    "langgraph",
    "pydantic_ai",
    "tool_ledger",
    "adk",
    "artifacts",
    "embeddings",
)


def with_builtins(projectors: Sequence[Projector]) -> list[Projector]:
    """The built-ins followed by ``projectors`` (``ValueError`` if one takes a built-in's name)."""
    taken = [p for p in projectors if getattr(p, "name", None) in BUILTIN_PROJECTORS]
    if taken:
        raise ValueError(
            f"projector name {taken[0].name!r} is a built-in's; give your projector another name"
        )
    builtins: list[Projector] = [
        RunStateProjector(),
        StatusIndexProjector(),
        SessionListingProjector(),
        ExecutionsProjector(),
        LangGraphCheckpointsProjector(),
        PydanticAIStepsProjector(),
        ToolLedgerProjector(),
        AdkSessionsProjector(),
        ArtifactsProjector(),
        EmbeddingsProjector(),
    ]
    assert tuple(p.name for p in builtins) == BUILTIN_PROJECTORS
    return [*builtins, *projectors]
