"""What every chapter notebook opens and closes with: quick or full mode, and where it ran.

    from gluon_resnet import notebook
    QUICK = notebook.quick()            # GLUON_RESNET_QUICK=1: tiny subsets, as the tests run them
    ...
    notebook.finish(T0, QUICK)          # last cell: "full mode: ran in 3.2 min on <CPU> ..."
"""
import os
import time

from .runtime import cpu_description


def quick(environ=None):
    """True when ``GLUON_RESNET_QUICK=1`` asks for the small, fast version of a chapter.

    >>> quick({"GLUON_RESNET_QUICK": "1"}), quick({})
    (True, False)
    """
    return (os.environ if environ is None else environ).get("GLUON_RESNET_QUICK") == "1"


def finish(t0, is_quick):
    """Print the closing line of a chapter: mode, minutes since ``t0``, and where it ran: the CPU's model
    and generation, threads and cores, the ISA oneDNN used (``runtime.cpu_description``) and the load."""
    print(f"{'quick' if is_quick else 'full'} mode: ran in {(time.perf_counter() - t0) / 60:.1f} min "
          f"on {cpu_description()}, load average {os.getloadavg()[0]:.1f}")
