"""What banks and coordinator agree on: message names, record keys, public settings."""
