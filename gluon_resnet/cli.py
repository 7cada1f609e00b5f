"""What every command-line entry point shares: user errors become one line and exit code 2."""
import argparse
import functools
import math
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


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose mistakes become one ``error: ...`` line and exit 2 (via ``cli.friendly``)."""

    def error(self, message):
        raise UserError(f"{message} (see {self.prog} --help)")


def number(kind, name, low=None, high=None, low_open=False, high_open=False):
    """An argparse type for a number in a range, e.g. ``number(float, "--lr", 0, low_open=True)``."""
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number, not {text!r}") from None
        bad_low = low is not None and (value <= low if low_open else value < low)
        bad_high = high is not None and (value >= high if high_open else value > high)
        if bad_low or bad_high or not math.isfinite(value):
            lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
            hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
            raise argparse.ArgumentTypeError(f"{name} must be {' and '.join(filter(None, (lo, hi)))}, "
                                             f"not {text}")
        return value
    return convert
