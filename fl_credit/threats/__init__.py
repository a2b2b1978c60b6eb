"""Threats: the privacy audit, evasion audit and the application side of the attacks."""
