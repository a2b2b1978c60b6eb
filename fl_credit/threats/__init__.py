"""Threat analyses run on what a party legitimately sees: audits, evasion, free riders."""
