"""``python -m sci_ext.testing``: run the fake LLM API in the foreground and print its URLs."""

from sci_ext.testing.llm_server import main

main()
