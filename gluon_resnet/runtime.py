"""Process set-up that must happen before MXNet loads, and the choice of devices.

MXNet sizes its OpenMP pool when it is imported; on a small machine its default
oversubscribes the cores and training runs 1.5-2x slower. ``configure_threads``
therefore runs when ``gluon_resnet`` is imported, before ``import mxnet``.
"""
import os

from .errors import UserError


def usable_cpus():
    """Number of CPUs this process may run on (its affinity mask, not the machine total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity mask
        return os.cpu_count() or 1


def configure_threads(environ=None):
    """Set OMP_NUM_THREADS to the usable CPUs unless the user chose a value; return the value in force.

    A value that is not a whole number of at least 1 is a UserError (OpenMP would ignore it).
    """
    environ = os.environ if environ is None else environ
    if not environ.get("OMP_NUM_THREADS", "").strip():
        environ["OMP_NUM_THREADS"] = str(usable_cpus())
    value = environ["OMP_NUM_THREADS"].strip()
    if not value.isdigit() or int(value) < 1:
        raise UserError(f"OMP_NUM_THREADS={environ['OMP_NUM_THREADS']!r} is not a whole number of at "
                        f"least 1: unset it or set it to the cores to use, e.g. OMP_NUM_THREADS={usable_cpus()}")
    return int(value)


def devices(kind="auto"):
    """Contexts to run on: every GPU for 'auto' when MXNet sees one, else the CPU.

    >>> devices("cpu")
    [cpu(0)]
    """
    import mxnet as mx  # here, not at the top: this module runs before MXNet may load

    if kind not in ("auto", "cpu", "gpu"):
        raise UserError(f"unknown device {kind!r}: choose auto, cpu or gpu")
    if kind == "cpu":
        return [mx.cpu()]
    count = mx.context.num_gpus()
    if count > 0:
        return [mx.gpu(i) for i in range(count)]
    if kind == "gpu":
        raise UserError(
            "--device gpu was asked for but MXNet sees no GPU: install the CUDA build that matches "
            "your driver (e.g. pip install mxnet-cu112==1.9.1 in place of mxnet) or use --device cpu")
    return [mx.cpu()]


def cpu_description(cpuinfo="/proc/cpuinfo"):
    """The CPU in the words the README's figures use, e.g. 'AMD EPYC (2 cores, AVX2)': the model
    name, the CPUs this process may use, and the widest vector instructions (AVX-512, AVX2)."""
    import platform

    try:
        text = open(cpuinfo).read()
    except OSError:
        text = ""
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), platform.processor() or platform.machine())
    flags = set(next((line.split(":", 1)[1].split() for line in text.splitlines()
                      if line.startswith("flags")), []))
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None
    return f"{model} ({', '.join(filter(None, [f'{usable_cpus()} cores', vector]))})"
