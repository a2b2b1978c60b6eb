"""What both sides share: the bank settings carried in a message, bank identities, record keys."""
