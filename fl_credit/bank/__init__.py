"""The bank's side: ClientApp, message handlers and bank-side privacy."""
