"""Backends produce tokens: edge (llama.cpp in-process), cloud GPU and remote APIs.

Each module defines its backend class and the config model of its `type:`; the plugin registry
(router/core/registry.py) maps type names to them, and builds backends (`Registry.create_backend`).
"""
