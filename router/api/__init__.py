"""The gRPC face: servicers (service, admin, health), conversion between messages and router types,
the server and its gate (auth, keys, addresses). The generated code (router_pb2*.py) is never
edited; `make proto` regenerates it."""
