import os
import re

import mxnet as mx
import pytest

from gluon_resnet import runtime
from gluon_resnet.errors import UserError


def test_threads_follow_the_affinity_mask_unless_set():
    env = {}
    assert runtime.configure_threads(env) == runtime.usable_cpus()
    assert env["OMP_NUM_THREADS"] == str(runtime.usable_cpus())
    env = {"OMP_NUM_THREADS": "1"}
    assert runtime.configure_threads(env) == 1 and env["OMP_NUM_THREADS"] == "1"


@pytest.mark.parametrize("value", ["abc", "0", "-1", "2.5"])
def test_a_thread_count_that_is_not_a_positive_whole_number_is_refused(value):
    with pytest.raises(UserError, match=f"OMP_NUM_THREADS='{re.escape(value)}' is not a whole number of at least 1"):
        runtime.configure_threads({"OMP_NUM_THREADS": value})


def test_importing_the_package_sets_the_thread_count(run_cli, tmp_path):
    import subprocess
    import sys
    import os
    code = "import os, gluon_resnet; print(os.environ['OMP_NUM_THREADS'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = str(__import__("helpers").ROOT)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == str(runtime.usable_cpus())


def test_auto_uses_every_gpu_when_present(monkeypatch):
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 2)
    assert runtime.devices("auto") == [mx.gpu(0), mx.gpu(1)]
    assert runtime.devices("gpu") == [mx.gpu(0), mx.gpu(1)]
    assert runtime.devices("cpu") == [mx.cpu()]


def test_no_gpu_means_cpu_for_auto_and_a_clear_error_for_gpu(monkeypatch):
    monkeypatch.setattr(mx.context, "num_gpus", lambda: 0)
    assert runtime.devices("auto") == [mx.cpu()]
    with pytest.raises(UserError, match="mxnet-cu"):
        runtime.devices("gpu")


# oneDNN's ISAs from the poorest to the richest, and the vector width of each family
ISA_RANK = ("sse41", "avx", "avx2", "avx2_vnni", "avx512_common", "avx512_mic", "avx512_mic_4ops", "avx512_core",
            "avx512_core_vnni", "avx512_core_bf16", "avx512_core_amx")
STEP = """
import gluon_resnet, mxnet as mx
from mxnet import autograd, gluon, np, npx
from gluon_resnet import models
npx.set_np()
net = models.get_model("fmnist_resnet8")
net.initialize(mx.init.Xavier())
models.hybridize_static(net)
trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.1})
x, y = np.random.uniform(size=(16, 1, 28, 28)), np.zeros(16)
with autograd.record():
    loss = gluon.loss.SoftmaxCrossEntropyLoss()(net(x), y)
loss.backward()
trainer.step(16)
loss.wait_to_read()
"""


def _width(isa):
    return 512 if isa.startswith("avx512") else 256 if isa.startswith("avx") else 128


def test_the_isa_label_agrees_with_the_kernels_of_a_real_training_step(monkeypatch):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "DNNL_MAX_CPU_ISA"}
    env.update(DNNL_VERBOSE="1", OMP_NUM_THREADS="1", PYTHONPATH=str(__import__("helpers").ROOT))
    log = subprocess.run([sys.executable, "-c", STEP], capture_output=True, text=True, env=env, timeout=300)
    assert log.returncode == 0, log.stderr[-2000:]
    kernels = runtime.kernel_isas(log.stdout)
    assert kernels, "the step's convolutions named no jit kernel"
    best = max(kernels, key=ISA_RANK.index)
    monkeypatch.delenv(runtime.ISA_ENV, raising=False)   # measure here, not trust a cached answer
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(runtime, "_CPU", {})
    info = runtime.cpu_info()
    assert info["isa_source"] == "onednn"  # this MXNet is built with oneDNN, so oneDNN must answer
    # oneDNN never runs a kernel above the ISA it says it uses, and the label names the same vector
    # width as the best kernel (an 8-channel probe says avx2 where the step runs avx512 kernels)
    assert ISA_RANK.index(info["isa"]) >= ISA_RANK.index(best), (info["isa"], kernels)
    assert _width(info["isa"]) == _width(best), (info["isa"], kernels)
    assert f", {info['isa']})" in runtime.cpu_description(info)


ZEN4 = ("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n"
        "flags\t\t: fpu avx avx2 fma avx512f avx512bw avx512vl avx512dq\n\nprocessor\t: 1\n")


def _fake_probe(monkeypatch, stdout, calls):
    import subprocess

    def fake_run(cmd, **kwargs):
        calls.append(kwargs["env"]["DNNL_VERBOSE"])
        return subprocess.CompletedProcess(cmd, 0, stderr="", stdout=stdout)
    monkeypatch.setattr(subprocess, "run", fake_run)


def test_cpu_info_reads_the_model_and_generation_from_cpuinfo_and_the_isa_from_onednn(monkeypatch, tmp_path):
    (tmp_path / "cpuinfo").write_text(ZEN4)
    monkeypatch.setattr(runtime, "CPUINFO", str(tmp_path / "cpuinfo"))
    monkeypatch.setattr(runtime, "_CPU", {})
    monkeypatch.delenv(runtime.ISA_ENV, raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    _fake_probe(monkeypatch, "onednn_verbose,info,cpu,isa:Intel AVX-512 with Intel DL Boost\n", [])
    info = runtime.cpu_info()
    assert {k: info[k] for k in ("model", "family", "model_number", "generation", "isa", "isa_source", "threads")} \
        == {"model": "AMD EPYC", "family": "25", "model_number": "17", "generation": "Zen 4",
            "isa": "avx512_core_vnni", "isa_source": "onednn", "threads": 1}
    assert runtime.cpu_description(info) == \
        f"AMD EPYC (Zen 4, family 25 model 17; 1 thread on {runtime.plural(info['cores'], 'core')}, avx512_core_vnni)"
    monkeypatch.setattr(runtime, "_CPU", {})  # oneDNN silent (built without it): the flags answer
    monkeypatch.delenv(runtime.ISA_ENV)
    _fake_probe(monkeypatch, "no oneDNN here\n", [])
    info = runtime.cpu_info()
    assert (info["isa"], info["isa_source"]) == ("avx512_core", "cpuinfo")


def test_the_onednn_info_line_and_kernel_tags_and_cpuinfo_flags_map_to_onednn_names():
    line = "dnnl_verbose,info,cpu,isa:"
    assert runtime.isa_from_onednn_log(f"dnnl_verbose,info,oneDNN v2.4.4\n{line}Intel AVX2\n") == "avx2"
    assert runtime.isa_from_onednn_log(f"{line}Intel AVX\n") == "avx"
    assert runtime.isa_from_onednn_log(f"{line}Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions") \
        == "avx512_core"
    # a newer oneDNN's longer words keep the richest known start
    assert runtime.isa_from_onednn_log("onednn_verbose,v1,info,cpu,isa:Intel AVX-512 with Intel DL Boost and "
                                       "bfloat16 support and Intel AMX with bfloat16 support") == "avx512_core_bf16"
    assert runtime.isa_from_onednn_log(f"{line}Something new") is None
    assert runtime.isa_from_onednn_log("no log at all") is None
    log = ("dnnl_verbose,exec,cpu,reorder,jit:uni,undef,...\n"
           "dnnl_verbose,exec,cpu,convolution,gemm:jit,forward_training,...\n"
           "dnnl_verbose,exec,cpu,convolution,jit:avx2,forward_training,...\n"
           "dnnl_verbose,exec,cpu,convolution,brgconv:avx512_core,forward_training,...\n")
    assert runtime.kernel_isas(log) == {"avx2", "avx512_core"}
    zen4 = {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16"}
    assert runtime.isa_from_flags(zen4) == "avx512_core_bf16"
    assert runtime.isa_from_flags(zen4 - {"avx512_bf16"}) == "avx512_core_vnni"
    assert runtime.isa_from_flags(zen4 - {"avx512_bf16", "avx512_vnni"}) == "avx512_core"
    assert runtime.isa_from_flags(zen4 - {"avx512bw"}) == "avx2"  # avx512f alone is not avx512_core
    assert runtime.isa_from_flags(set()) == "unknown"


@pytest.mark.parametrize("vendor, family, model, generation", [
    ("AuthenticAMD", 25, 0x01, "Zen 3"), ("AuthenticAMD", 25, 0x21, "Zen 3"), ("AuthenticAMD", 25, 0x11, "Zen 4"),
    ("AuthenticAMD", 25, 0xa0, "Zen 4"), ("AuthenticAMD", 26, 0x02, "Zen 5"), ("AuthenticAMD", 23, 0x31, "Zen 2"),
    ("GenuineIntel", 6, 143, "Sapphire Rapids"), ("GenuineIntel", 6, 1, None), ("AuthenticAMD", 99, 1, None)])
def test_family_and_model_name_the_generation(vendor, family, model, generation):
    assert runtime.cpu_generation(vendor, family, model) == generation


def test_read_cpuinfo_takes_the_first_cpus_model_and_flags(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\n"
                    "model name\t: AMD EPYC 9R14 96-Core Processor\nflags\t\t: fpu avx2 fma\n\n"
                    "processor\t: 1\nmodel name\t: something else\nflags\t\t: fpu\n")
    assert runtime.read_cpuinfo(info) == ("AMD EPYC 9R14 96-Core Processor", {"fpu", "avx2", "fma"})
    fields = {}
    runtime.read_cpuinfo(info, fields_out=fields)
    assert (fields["processor"], fields["cpu family"], fields["model"]) == ("0", "25", "17")
    import platform
    monkeypatch.setattr(platform, "processor", lambda: "")
    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    assert runtime.read_cpuinfo(tmp_path / "missing") == ("riscv64", set())


def test_the_probes_answer_is_handed_down_and_trusted_only_on_the_same_cpu(monkeypatch):
    probes = []
    _fake_probe(monkeypatch, "dnnl_verbose,info,cpu,isa:Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ "
                             "extensions\n", probes)
    monkeypatch.delenv(runtime.ISA_ENV, raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(runtime, "_CPU", {})
    assert runtime.cpu_info()["isa"] == "avx512_core" and probes == ["1"]
    cached = os.environ[runtime.ISA_ENV]
    assert cached.startswith("v2:avx512_core|")                       # left for child processes
    monkeypatch.setattr(runtime, "_CPU", {})                           # a child process: no probe
    assert runtime.cpu_info()["isa"] == "avx512_core" and len(probes) == 1
    monkeypatch.setattr(runtime, "_CPU", {})                           # the old probe's value: probe again
    monkeypatch.setenv(runtime.ISA_ENV, cached.replace("v2:avx512_core", "avx2"))
    assert runtime.cpu_info()["isa"] == "avx512_core" and len(probes) == 2
    monkeypatch.setattr(runtime, "_CPU", {})                           # another CPU's answer: probe again
    monkeypatch.setenv(runtime.ISA_ENV, "v2:avx2|another CPU|23|49|")
    assert runtime.cpu_info()["isa"] == "avx512_core" and len(probes) == 3
    monkeypatch.setattr(runtime, "_CPU", {})                           # oneDNN capped: probe again
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "AVX2")
    runtime.cpu_info()
    assert len(probes) == 4
