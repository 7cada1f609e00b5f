"""What every chapter notebook opens and closes with: quick or full mode, and where it ran.

    from gluon_resnet import notebook
    QUICK = notebook.quick()            # GLUON_RESNET_QUICK=1: tiny subsets, as the tests run them
    ...
    notebook.finish(T0, QUICK)          # last cell: "full mode: ran in 3.2 min on <CPU> ..."
"""
import os
import platform
import time


def quick(environ=None):
    """True when ``GLUON_RESNET_QUICK=1`` asks for the small, fast version of a chapter.

    >>> quick({"GLUON_RESNET_QUICK": "1"}), quick({})
    (True, False)
    """
    return (os.environ if environ is None else environ).get("GLUON_RESNET_QUICK") == "1"


def cpu_model(cpuinfo="/proc/cpuinfo"):
    """The processor's model name (from ``/proc/cpuinfo`` on Linux, else ``platform``)."""
    try:
        with open(cpuinfo, encoding="utf-8") as lines:
            for line in lines:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def finish(t0, is_quick):
    """Print the closing line of a chapter: mode, minutes since ``t0``, the CPU, its cores and load."""
    print(f"{'quick' if is_quick else 'full'} mode: ran in {(time.perf_counter() - t0) / 60:.1f} min "
          f"on {cpu_model()} ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})")
