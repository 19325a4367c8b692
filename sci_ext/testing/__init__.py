"""Stand-ins for offline demos and tests: a local fake of the OpenAI and Anthropic APIs.

``sci_ext.testing`` is not imported by ``import sci_ext`` or ``%load_ext sci_ext``; import it
where a notebook, a doc page or a test needs an LLM API without a network or an API key.
"""

from sci_ext.testing.llm_server import DEFAULT_USAGE, FakeLLMServer

__all__ = ["DEFAULT_USAGE", "FakeLLMServer"]
