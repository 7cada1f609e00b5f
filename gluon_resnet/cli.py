"""What every command-line entry point shares: user errors become one line and exit code 2."""
import functools
import os
import sys

from .errors import UserError


def friendly(main):
    """Wrap a ``main(argv)`` so a ``UserError`` prints ``error: ...`` and exits 2, without a traceback."""
    @functools.wraps(main)
    def wrapper(argv=None):
        try:
            return main(argv)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except BrokenPipeError:  # output piped into `head` and closed early: not an error
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # silence the exit-time flush
            raise SystemExit(0) from None
    return wrapper


def positive(kind, minimum, name):
    """An argparse type that accepts numbers of ``kind`` no smaller than ``minimum`` (strictly above for 0.0)."""
    import argparse

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, not {text!r}") from None
        if value < minimum or (minimum == 0 and kind is float and value <= 0):
            bound = "> 0" if (minimum == 0 and kind is float) else f">= {minimum}"
            raise argparse.ArgumentTypeError(f"{name} must be {bound}, not {text}")
        return value
    return convert
