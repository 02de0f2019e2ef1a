"""The HTTP faces: OpenAI Chat Completions and Anthropic Messages over HTTP, plus /metrics."""
