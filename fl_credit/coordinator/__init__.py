"""The coordinator's side: the ServerApp, the federation, rounds, federated queries, its view."""
