"""tokenrouter: places LLM requests on edge, cloud-GPU and remote-API backends."""

__version__ = "0.1.0"
