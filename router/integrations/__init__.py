"""Integrations with agent frameworks, each behind an optional extra.

`router.integrations.langchain.ChatTokenRouter` is a LangChain chat model over the router's gRPC
API (`pip install 'tokenrouter[langchain]'`); see docs/langchain.md. Nothing here is imported by
the router itself, so the extras stay optional.
"""
