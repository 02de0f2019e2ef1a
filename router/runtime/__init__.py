"""Serving requests: the engine (lifecycle, reload, drain), one config version (context.py),
admission (reserve / settle / release, shared with the replay), generation with fallback, backend
health and probing, and the request log."""
