"""User-facing errors: each one is reported as a single clear line and a non-zero exit."""


class FlCreditError(Exception):
    """A problem with the user's input or configuration, described in one line."""


class DataError(FlCreditError):
    """Input data that cannot be used: missing file, bad column, bad values."""


class ConfigError(FlCreditError):
    """A configuration value that is out of range or inconsistent."""


class TrainingFailedError(FlCreditError):
    """The run finished but its model did not train (every round, or too many, skipped)."""


def is_user_error(err: BaseException) -> bool:
    """True for problems with the user's input: ours, and components' errors that say so
    (``user_error = True``, e.g. the DP components' settings errors)."""
    return isinstance(err, FlCreditError) or bool(getattr(err, "user_error", False))


def one_line(err: BaseException) -> str:
    """A single line describing ``err``: the message alone for user errors, otherwise the
    exception type and the last line of its message."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    message = lines[-1] if lines else ""
    if is_user_error(err):
        return message or type(err).__name__
    return f"{type(err).__name__}: {message}" if message else type(err).__name__
