"""The ``rag`` section (retrieval-augmented generation settings), registered like a third-party section.

It is domain configuration, not part of the generic config machinery, so it goes
through :func:`~sci_ext.core.config.register_section` as any plugin's section does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .registry import register_section
from .sections import setting

__all__ = ["RAGConfig", "get_rag_config"]


@dataclass
class RAGConfig:
    """Retrieval-augmented generation settings (the seed's RAGConfig)."""

    chunk_size: int = setting(1000, doc="Characters per chunk.", min=1, max=10**7)
    chunk_overlap: int = setting(200, doc="Characters shared by neighbouring chunks.", min=0)
    embedding_model: str = setting("sentence-transformers/all-MiniLM-L6-v2", doc="Embedding model name.")
    vector_store: str = setting("faiss", doc="Vector store backend.", choices=("faiss", "chroma", "qdrant", "memory"))
    top_k: int = setting(5, doc="Chunks retrieved per query.", min=1, max=1000)
    similarity_threshold: float = setting(0.7, doc="Minimum similarity of a retrieved chunk.", min=0, max=1)
    max_context_tokens: int = setting(4000, doc="Token budget of retrieved context.", min=1)

    def __post_init__(self) -> None:
        # A cross-field rule the per-field checks cannot express.
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )


def get_rag_config() -> RAGConfig:
    """The ``rag`` section (chunking and retrieval settings)."""
    from . import get_config

    section: Any = get_config().rag
    return section


register_section("rag", RAGConfig)
