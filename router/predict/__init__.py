"""Learned predictors: time to first token, time per output token and output length, trained
from the request log (`tokenrouter train`) and served with onnxruntime where decisions are made.
See docs/predictors.md."""
