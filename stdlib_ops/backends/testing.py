"""The fake OpenAI-compatible server for tests: ``autodp_backends.testing``'s, under its older name."""

from autodp_backends.testing import FakeOpenAIServer, FakeRequest, Reply, echo_handler

__all__ = ["FakeOpenAIServer", "FakeRequest", "Reply", "echo_handler"]
