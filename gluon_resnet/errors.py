"""The one exception type users see: a mistake they can fix, told in one sentence."""


class UserError(Exception):
    """Bad input, missing files or an impossible request. CLIs print it as one line and exit 2."""


class DataError(UserError):
    """A data file is missing, corrupt or unreadable; the message names the file and the fix."""
