"""Deployment: certificates, bank data export, status, SuperNodes, the loopback federation."""
