"""The fake LLM API, for tests importing it by bare name: it ships as ``sci_ext.testing.llm_server``."""

from sci_ext.testing.llm_server import DEFAULT_USAGE, FakeLLMServer

__all__ = ["DEFAULT_USAGE", "FakeLLMServer"]
