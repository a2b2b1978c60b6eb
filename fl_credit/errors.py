"""User-facing errors: each one is reported as a single clear line and a non-zero exit."""


class FlCreditError(Exception):
    """A problem with the user's input or configuration, described in one line."""


class DataError(FlCreditError):
    """Input data that cannot be used: missing file, bad column, bad values."""


class ConfigError(FlCreditError):
    """A configuration value that is out of range or inconsistent."""


class TrainingFailedError(FlCreditError):
    """The run finished but its model did not train (every round, or too many, skipped)."""


def one_line(err: BaseException) -> str:
    """A single line describing ``err``: the message alone for our own errors, otherwise the
    exception type and the last line of its message."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    message = lines[-1] if lines else ""
    if isinstance(err, FlCreditError):
        return message or type(err).__name__
    return f"{type(err).__name__}: {message}" if message else type(err).__name__
