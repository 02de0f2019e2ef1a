"""The kernel: request and decision types, errors, the policy contracts, the typed plugin handle,
stores, estimates and the plugin registry. Imports nothing else of the project (the registry's
built-in table aside); policies and backends import only this package."""
