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


def context_of(net):
    """The context ``net``'s parameters live on (the first, where it holds copies on several):
    where its inputs must be put.

    >>> from mxnet.gluon import nn
    >>> import mxnet as mx
    >>> net = nn.Dense(2)
    >>> net.initialize(ctx=mx.cpu(1))
    >>> context_of(net)
    cpu(1)
    """
    return next(iter(net.collect_params().values())).list_ctx()[0]


# ---------------------------------------------------------------------------- which CPU a figure came from

# oneDNN's names for the x86 instruction sets its kernels are built for, richest first, and the
# /proc/cpuinfo flags each one needs (after oneDNN's cpu_isa_traits).
ISA_FLAGS = (("avx512_core_bf16", {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"}),
             ("avx512_core_vnni", {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"}),
             ("avx512_core", {"avx512f", "avx512bw", "avx512vl", "avx512dq"}),
             ("avx2", {"avx2", "fma"}), ("avx", {"avx"}), ("sse41", {"sse4_1"}))

# How oneDNN words its "isa:" info line (cpu_isa_traits' get_name), in its kernel-tag names. A newer
# oneDNN may add words after one of these (the AMX variants do); the longest known start is taken.
ONEDNN_ISA_WORDS = {
    "Intel SSE4.1": "sse41", "Intel AVX": "avx", "Intel AVX2": "avx2",
    "Intel AVX2 with Intel DL Boost": "avx2_vnni", "Intel AVX-512": "avx512_common",
    "Intel AVX-512 with AVX512CD, AVX512ER, and AVX512PF extensions": "avx512_mic",
    "Intel AVX-512 with AVX512_4FMAPS and AVX512_4VNNIW extensions": "avx512_mic_4ops",
    "Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions": "avx512_core",
    "Intel AVX-512 with Intel DL Boost": "avx512_core_vnni",
    "Intel AVX-512 with Intel DL Boost and bfloat16 support": "avx512_core_bf16",
    "Intel AVX-512 with Intel DL Boost and bfloat16 support and Intel AMX with bfloat16 and 8-bit integer "
    "support": "avx512_core_amx",
}

# One small convolution in a child process, run with DNNL_VERBOSE=1: oneDNN's first primitive prints
# its "isa:" info line. (The ISA of the convolution kernel itself is no answer: for 8 channels oneDNN
# picks an avx2 kernel even on AVX-512 CPUs.)
_ONEDNN_PROBE = ("import gluon_resnet, mxnet as mx\n"
                 "mx.nd.Convolution(mx.nd.ones((1, 16, 8, 8)), mx.nd.ones((16, 16, 3, 3)), kernel=(3, 3),"
                 " num_filter=16, no_bias=True).wait_to_read()\n")


def isa_from_flags(flags):
    """oneDNN's name for the richest instruction set the CPU ``flags`` allow.

    >>> isa_from_flags({"avx", "avx2", "fma", "sse4_1"})
    'avx2'
    >>> isa_from_flags({"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"})
    'avx512_core_bf16'
    """
    return next((name for name, need in ISA_FLAGS if need <= set(flags)), "unknown")


def isa_from_onednn_log(text):
    """The instruction set oneDNN says it dispatches to, from the ``isa:`` info line of a ``DNNL_VERBOSE``
    log, in its kernel-tag names; None where the log has no such line (oneDNN never ran).

    >>> isa_from_onednn_log("onednn_verbose,info,cpu,isa:Intel AVX-512 with Intel DL Boost and bfloat16 support")
    'avx512_core_bf16'
    >>> isa_from_onednn_log("dnnl_verbose,info,cpu,isa:Intel AVX2")
    'avx2'
    """
    for line in text.splitlines():
        _, sep, words = line.partition(",info,cpu,isa:")
        if sep:
            known = [start for start in ONEDNN_ISA_WORDS if words.strip().startswith(start)]
            return ONEDNN_ISA_WORDS[max(known, key=len)] if known else None
    return None


def kernel_isas(text):
    """The instruction sets named by the convolution kernels of a ``DNNL_VERBOSE`` log
    ('jit:avx512_core' -> 'avx512_core'; a 'gemm:jit' or 'ref:any' kernel names none).

    >>> sorted(kernel_isas("dnnl_verbose,exec,cpu,convolution,jit:avx512_common,forward_training,...\\n"
    ...                    "onednn_verbose,exec,cpu,convolution,brgconv:avx512_core,backward_data,..."))
    ['avx512_common', 'avx512_core']
    """
    found = set()
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) > 4 and fields[1:4] == ["exec", "cpu", "convolution"] and ":" in fields[4]:
            isa = fields[4].split(":", 1)[1]
            if isa.startswith(("sse", "avx", "amx")):
                found.add(isa)
    return found


CPUINFO = "/proc/cpuinfo"


def read_cpuinfo(path=None, fields_out=None):
    """(model name, set of flags) of the first CPU in ``path``; (platform.processor(), empty set) without one.

    ``fields_out``, a dict, also receives every field of that CPU (e.g. 'cpu family', 'model': a
    virtual machine's model name can be as bare as 'AMD EPYC', and these tell its generation)."""
    import platform

    try:
        text = open(path or CPUINFO).read()
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


# Intel family 6 models of the server and desktop parts this package is likely to meet.
_INTEL_FAMILY6 = {63: "Haswell", 79: "Broadwell", 85: "Skylake or Cascade Lake", 94: "Skylake",
                  106: "Ice Lake", 108: "Ice Lake", 140: "Tiger Lake", 143: "Sapphire Rapids",
                  151: "Alder Lake", 154: "Alder Lake", 158: "Kaby Lake or Coffee Lake", 173: "Granite Rapids",
                  183: "Raptor Lake", 207: "Emerald Rapids"}


def cpu_generation(vendor, family, model):
    """The CPU generation in words where the vendor, family and model number tell it; else None.

    >>> cpu_generation("AuthenticAMD", 25, 17), cpu_generation("AuthenticAMD", 25, 1)
    ('Zen 4', 'Zen 3')
    >>> cpu_generation("GenuineIntel", 6, 143), cpu_generation("GenuineIntel", 6, 2) is None
    ('Sapphire Rapids', True)
    """
    if vendor == "AuthenticAMD":
        if family == 23:
            return "Zen 2" if model >= 0x30 else "Zen or Zen+"
        if family == 25:
            return "Zen 4" if 0x10 <= model <= 0x1f or 0x60 <= model <= 0xaf else "Zen 3"
        if family == 26:
            return "Zen 5"
    if vendor == "GenuineIntel" and family == 6:
        return _INTEL_FAMILY6.get(model)
    return None


_CPU = {}
# The probe's answer, handed down to child processes (a launcher's workers, a test's subprocesses)
# as "v2:ISA|what it was measured on", so each of them need not start its own probe. Values without
# the "v2:" mark came from the old kernel probe (which said avx2 on AVX-512 CPUs) and are measured again.
ISA_ENV = "GLUON_RESNET_ONEDNN_ISA"
_ISA_MARK = "v2:"


def _probe_isa():
    """Run the probe in a child process and read oneDNN's ``isa:`` line; None where oneDNN did not speak."""
    import subprocess
    import sys

    env = dict(os.environ, DNNL_VERBOSE="1", OMP_NUM_THREADS="1")
    try:
        log = subprocess.run([sys.executable, "-c", _ONEDNN_PROBE], capture_output=True, text=True,
                             env=env, timeout=120).stdout
    except (OSError, subprocess.SubprocessError):
        log = ""
    return isa_from_onednn_log(log)


def cpu_info():
    """The CPU a figure came from: ``model`` name, ``cores`` this process may use, OpenMP ``threads``,
    ``isa``, the instruction set oneDNN dispatches to ('avx2', 'avx512_core', 'avx512_core_bf16', ...),
    ``family``/``model_number`` from /proc/cpuinfo (None where it has none) and the ``generation`` they
    name ('Zen 4'; None where unknown).

    The ISA is oneDNN's own word: a child process runs one convolution with ``DNNL_VERBOSE=1`` and reads
    its "isa:" info line (``isa_source`` 'onednn'). Where that fails, the richest set the /proc/cpuinfo
    flags allow, in oneDNN's names (``isa_source`` 'cpuinfo'). Measured once per process tree (the child
    takes a second or two): the answer is left in ``$GLUON_RESNET_ONEDNN_ISA`` for child processes,
    which trust it only on the same kind of CPU with the same ``DNNL_MAX_CPU_ISA``.
    """
    if not _CPU:
        fields = {}
        model, flags = read_cpuinfo(fields_out=fields)
        where = "|".join([model, fields.get("cpu family", ""), fields.get("model", ""),
                          os.environ.get("DNNL_MAX_CPU_ISA", "")])
        isa, _, measured_on = os.environ.get(ISA_ENV, "").partition("|")
        isa = isa[len(_ISA_MARK):] if isa.startswith(_ISA_MARK) and measured_on == where else None
        if not isa:
            isa = _probe_isa()
            if isa:
                os.environ[ISA_ENV] = f"{_ISA_MARK}{isa}|{where}"
        family, number = fields.get("cpu family"), fields.get("model")
        generation = None
        if family and number and family.isdigit() and number.isdigit():
            generation = cpu_generation(fields.get("vendor_id"), int(family), int(number))
        _CPU.update(model=model, cores=usable_cpus(), threads=int(os.environ.get("OMP_NUM_THREADS") or 0),
                    isa=isa or isa_from_flags(flags), isa_source="onednn" if isa else "cpuinfo",
                    family=family, model_number=number, generation=generation)
    return dict(_CPU)


def plural(count, word):
    """``count`` and ``word``, with an s unless the count is one: plural(1, "core") is '1 core'."""
    return f"{count} {word}{'s' if count != 1 else ''}"


def cpu_description(info=None):
    """The CPU in the words the README's figures use: model, generation, threads and cores, oneDNN's ISA.

    >>> cpu_description({"model": "AMD EPYC", "generation": "Zen 4", "family": "25", "model_number": "17",
    ...                  "cores": 2, "threads": 2, "isa": "avx512_core_bf16"})
    'AMD EPYC (Zen 4, family 25 model 17; 2 threads on 2 cores, avx512_core_bf16)'
    >>> cpu_description({"model": "Some CPU", "family": "6", "model_number": "999", "cores": 1, "threads": 1,
    ...                  "isa": "avx2"})
    'Some CPU (family 6 model 999; 1 thread on 1 core, avx2)'
    """
    info = info or cpu_info()
    where = plural(info["cores"], "core")
    if info["threads"]:
        where = f"{plural(info['threads'], 'thread')} on {where}"
    which = ""
    if info.get("family") and info.get("model_number"):
        which = f"family {info['family']} model {info['model_number']}; "
        if info.get("generation"):
            which = f"{info['generation']}, {which}"
    return f"{info['model']} ({which}{where}, {info['isa']})"
