"""Built-in routing policies, one module per policy family."""
