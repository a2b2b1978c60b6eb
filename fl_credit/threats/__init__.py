"""Threats: the privacy audit, evasion, free riders, the threat matrix's statistics and the
application side of the attacks (all run on what a party legitimately sees)."""
