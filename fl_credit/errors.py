"""User-facing errors: each one is reported as a single clear line and a non-zero exit."""


class FlCreditError(Exception):
    """A problem with the user's input or configuration, described in one line."""


class DataError(FlCreditError):
    """Input data that cannot be used: missing file, bad column, bad values."""


class ConfigError(FlCreditError):
    """A configuration value that is out of range or inconsistent."""
