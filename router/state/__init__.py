"""State shared by many router processes (Redis); the in-memory stores live in router/core/."""
