"""The bank's side: the ClientApp and its message handlers, the bank's privacy and error replies."""
