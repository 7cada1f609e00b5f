"""What every chapter notebook opens and closes with: quick or full mode, and where it ran.

    from gluon_resnet import notebook
    QUICK = notebook.quick()            # GLUON_RESNET_QUICK=1: tiny subsets, as the tests run them
    ...
    notebook.finish(T0, QUICK)          # last cell: "full mode: ran in 3.2 min on <CPU> (family ...; oneDNN runs ...)"
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


def where(info=None, load=None):
    """The machine in one phrase: CPU model, AMD/Intel family and model numbers (the generation),
    the instruction set oneDNN's kernels really use, the OpenMP threads and the load.

    >>> where({"model": "AMD EPYC", "family": "25", "model_number": "17", "isa": "avx512_core_bf16",
    ...        "isa_source": "onednn", "threads": 2, "cores": 2}, load=0.5)
    'AMD EPYC (family 25 model 17; oneDNN runs avx512_core_bf16; 2 OpenMP threads on 2 CPUs; load average 0.5)'
    """
    from .runtime import cpu_info

    info = info or cpu_info()
    load = os.getloadavg()[0] if load is None else load
    generation = (f"family {info['family']} model {info['model_number']}" if info.get("family")
                  else "family unknown")
    isa = f"oneDNN runs {info['isa']}" if info.get("isa_source") == "onednn" else \
        f"oneDNN ISA unprobed, CPU flags allow {info['isa']}"
    threads = info.get("threads") or "unset (all)"
    return (f"{info['model']} ({generation}; {isa}; {threads} OpenMP threads on {info['cores']} CPUs; "
            f"load average {load:.1f})")


def finish(t0, is_quick):
    """Print the closing line of a chapter: mode, minutes since ``t0``, the CPU, its generation,
    oneDNN's instruction set, the threads and the load."""
    print(f"{'quick' if is_quick else 'full'} mode: ran in {(time.perf_counter() - t0) / 60:.1f} min "
          f"on {where()}")
