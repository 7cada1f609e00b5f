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


# ---------------------------------------------------------------------------- which CPU a figure came from

# oneDNN's names for the x86 instruction sets its kernels are built for, richest first, and the
# /proc/cpuinfo flags each one needs (after oneDNN's cpu_isa_traits).
ISA_FLAGS = (("avx512_core_bf16", {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"}),
             ("avx512_core_vnni", {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"}),
             ("avx512_core", {"avx512f", "avx512bw", "avx512vl", "avx512dq"}),
             ("avx2", {"avx2", "fma"}), ("avx", {"avx"}), ("sse41", {"sse4_1"}))

# One small convolution in a child process, run with DNNL_VERBOSE=1: oneDNN logs the kernel it chose.
_ONEDNN_PROBE = ("import gluon_resnet, mxnet as mx\n"
                 "mx.nd.Convolution(mx.nd.ones((1, 8, 8, 8)), mx.nd.ones((8, 8, 3, 3)), kernel=(3, 3),"
                 " num_filter=8, no_bias=True).wait_to_read()\n")


def isa_from_flags(flags):
    """oneDNN's name for the richest instruction set the CPU ``flags`` allow.

    >>> isa_from_flags({"avx", "avx2", "fma", "sse4_1"})
    'avx2'
    >>> isa_from_flags({"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"})
    'avx512_core_bf16'
    """
    return next((name for name, need in ISA_FLAGS if need <= set(flags)), "unknown")


def isa_from_onednn_log(text):
    """The instruction set of the first convolution kernel in a ``DNNL_VERBOSE`` log ('jit:avx2' -> 'avx2');
    None where no kernel names one (a 'gemm:jit' or 'ref:any' kernel does not).

    >>> isa_from_onednn_log("dnnl_verbose,exec,cpu,convolution,jit:avx512_core,forward_training,...")
    'avx512_core'
    """
    for line in text.splitlines():
        fields = line.split(",")
        if fields[:4] == ["dnnl_verbose", "exec", "cpu", "convolution"] and ":" in fields[4]:
            isa = fields[4].split(":", 1)[1]
            if isa.startswith(("sse", "avx", "amx")):
                return isa
    return None


def read_cpuinfo(path="/proc/cpuinfo", fields_out=None):
    """(model name, set of flags) of the first CPU in ``path``; (platform.processor(), empty set) without one.

    ``fields_out``, a dict, also receives every field of that CPU (e.g. 'cpu family', 'model': a
    virtual machine's model name can be as bare as 'AMD EPYC', and these tell its generation)."""
    import platform

    try:
        text = open(path).read()
    except OSError:
        text = ""
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    model = fields.get("model name") or platform.processor() or platform.machine()
    if fields_out is not None:
        fields_out.update(fields)
    return model, set(fields.get("flags", "").split())


_CPU = {}
# The probe's answer, handed down to child processes (a launcher's workers, a test's subprocesses)
# as "ISA|what it was measured on", so each of them need not start its own probe.
ISA_ENV = "GLUON_RESNET_ONEDNN_ISA"


def cpu_info():
    """The CPU a figure came from: ``model``, ``cores`` this process may use, OpenMP ``threads``, and
    ``isa``, the instruction set of oneDNN's kernels ('avx2', 'avx512_core', 'avx512_core_bf16', ...),
    and ``family``/``model_number`` from /proc/cpuinfo (None where it has none): AMD's family 25 covers
    Zen 3 (EPYC Milan is model 1) and Zen 4 (EPYC Genoa is models 16-31).

    The ISA is what oneDNN itself picks: a child process runs one small convolution with
    ``DNNL_VERBOSE=1`` and the kernel's name says it (``isa_source`` 'onednn'). Where that fails,
    the richest set the /proc/cpuinfo flags allow, in oneDNN's names (``isa_source`` 'cpuinfo').
    Measured once per process tree (the child takes a second or two): the answer is left in
    ``$GLUON_RESNET_ONEDNN_ISA`` for child processes, which trust it only on the same kind of CPU
    with the same ``DNNL_MAX_CPU_ISA``.
    """
    import subprocess
    import sys

    if not _CPU:
        fields = {}
        model, flags = read_cpuinfo(fields_out=fields)
        where = "|".join([model, fields.get("cpu family", ""), fields.get("model", ""),
                          os.environ.get("DNNL_MAX_CPU_ISA", "")])
        isa, _, measured_on = os.environ.get(ISA_ENV, "").partition("|")
        if not isa or measured_on != where:
            env = dict(os.environ, DNNL_VERBOSE="1", OMP_NUM_THREADS="1")
            try:
                log = subprocess.run([sys.executable, "-c", _ONEDNN_PROBE], capture_output=True, text=True,
                                     env=env, timeout=120).stdout
            except (OSError, subprocess.SubprocessError):
                log = ""
            isa = isa_from_onednn_log(log)
            if isa:
                os.environ[ISA_ENV] = f"{isa}|{where}"
        _CPU.update(model=model, cores=usable_cpus(), threads=int(os.environ.get("OMP_NUM_THREADS") or 0),
                    isa=isa or isa_from_flags(flags), isa_source="onednn" if isa else "cpuinfo",
                    family=fields.get("cpu family"), model_number=fields.get("model"))
    return dict(_CPU)


def cpu_description(info=None):
    """The CPU in the words the README's figures use: model, cores, and oneDNN's instruction set.

    >>> cpu_description({"model": "AMD EPYC 9R14", "cores": 2, "threads": 2, "isa": "avx512_core_bf16"})
    'AMD EPYC 9R14 (2 cores, avx512_core_bf16)'
    >>> cpu_description({"model": "AMD EPYC", "cores": 2, "threads": 1, "isa": "avx2"})
    'AMD EPYC (1 thread on 2 cores, avx2)'
    """
    info = info or cpu_info()
    cores = f"{info['cores']} core{'s' if info['cores'] != 1 else ''}"
    if info["threads"] and info["threads"] != info["cores"]:
        cores = f"{info['threads']} thread{'s' if info['threads'] != 1 else ''} on {cores}"
    return f"{info['model']} ({cores}, {info['isa']})"
