"""Deciding where requests go: the per-profile policy pipeline, the joint placement plan of a
batch, the batcher that gathers requests, and the solver (the only OR-Tools importer)."""
