import os
import sys

import pytest

TEXT = ("cpu", "cpu_model", "cpu_family_model", "cpu_generation", "onednn_isa", "model")


def _figures(stdout):
    """The numeric ``name: value`` lines of bench's output (the CPU lines are text)."""
    lines = dict(line.split(": ", 1) for line in stdout.strip().splitlines())
    return {name: float(value) for name, value in lines.items() if name not in TEXT}


def _cpuinfo():
    """The first CPU's fields in /proc/cpuinfo, read here without the package's help."""
    fields = {}
    for line in open("/proc/cpuinfo").read().split("\n\n")[0].splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return fields


def _says_which_cpu(stdout, threads, capped=False):
    """bench's CPU lines against the machine itself: /proc/cpuinfo, the affinity mask, the thread count
    the child was given, and the ISA its flags allow (or the cap set by ``DNNL_MAX_CPU_ISA=AVX2``)."""
    text = dict(line.split(": ", 1) for line in stdout.strip().splitlines())
    cpu = _cpuinfo()
    assert text["cpu_model"] == cpu["model name"] and text["cpu"].startswith(cpu["model name"] + " (")
    assert text["cpu_family_model"] == f"{cpu['cpu family']}/{cpu['model']}"
    assert int(text["cpu_cores"]) == len(os.sched_getaffinity(0)) and int(text["omp_threads"]) == threads
    flags = set(cpu["flags"].split())
    if capped:
        expected = "avx2"
    elif {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        expected = "avx512_core"  # ..._vnni, ..._bf16 as the flags allow
    else:
        expected = "avx2" if "avx2" in flags else ""
    assert text["onednn_isa"].startswith(expected), (text["onednn_isa"], expected)
    assert f"{threads} thread{'s' if threads > 1 else ''} on " in text["cpu"]
    assert f", {text['onednn_isa']})" in text["cpu"]


@pytest.mark.skipif(not os.path.exists("/proc/cpuinfo"), reason="reads the CPU from /proc/cpuinfo")
def test_bench_prints_every_figure_and_the_cpu_that_oneDNN_was_capped_to(run_cli):
    out = run_cli("gluon_resnet.bench", "--size", "16", "--batch-size", "8", "--steps", "1",
                  "--warmup", "1", "--rounds", "2", "--workers", "0",
                  env={"DNNL_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    figures = _figures(out.stdout)
    _says_which_cpu(out.stdout, threads=1, capped="avx2" in _cpuinfo()["flags"].split())
    for name in ("compute_step_img_per_s", "end_to_end_img_per_s", "d2l_baseline_img_per_s",
                 "end_to_end_over_compute", "matmul_gflop_per_s", "load_average_1min"):
        assert name in figures


@pytest.fixture
def fake_timings(monkeypatch, capsys):
    """bench.main with every timing replaced by a round number; returns a function giving its figures."""
    from gluon_resnet import bench

    monkeypatch.setattr(bench, "compute_and_end_to_end", lambda *a, **k: (100.0, 50.0))
    monkeypatch.setattr(bench, "train_gflop_per_step", lambda model, size, batch: 0.2)
    monkeypatch.setattr(bench, "matmul_gflop_per_s", lambda: 10.0)
    monkeypatch.setattr(bench, "baseline_in_child", lambda args: 25.0)
    monkeypatch.setattr(bench, "print_cpu", lambda *a: None)
    monkeypatch.setattr(bench.os, "getloadavg", lambda: (1.5, 1.0, 1.0))

    def figures(*argv):
        assert bench.main(["--batch-size", "8", *argv]) == 0
        return _figures(capsys.readouterr().out)
    return figures


def test_bench_figures_from_known_timings(fake_timings):
    # 100 img/s compute-only, 50 end to end, 0.2 GFLOP a step of 8 images, a 10 GFLOP/s matmul, 25 img/s d2l
    assert fake_timings() == {
        "load_average_1min": 1.5, "compute_step_img_per_s": 100.0, "end_to_end_img_per_s": 50.0,
        "end_to_end_over_compute": 0.5, "train_gflop_per_step": 0.2, "compute_gflop_per_s": 2.5,
        "matmul_gflop_per_s": 10.0, "compute_share_of_matmul": 0.25, "img_per_s_at_matmul_rate": 400.0,
        "d2l_baseline_img_per_s": 25.0, "end_to_end_over_baseline": 2.0, "load_average_1min_end": 1.5}


def test_bench_runs_the_peer_script_it_is_given(fake_timings, tmp_path):
    peer = tmp_path / "peer.py"  # 40 img/s in NCHW, 80 channels-last
    peer.write_text("import sys\nprint('torch_step_img_per_s:', 80.0 if '--channels-last' in sys.argv else 40.0)\n")
    f = fake_timings("--no-baseline", "--torch-python", sys.executable, "--peer", str(peer))
    assert (f["torch_nchw_img_per_s"], f["torch_channels_last_img_per_s"], f["compute_over_torch_best"]) == \
        (40.0, 80.0, 1.25)


def test_a_missing_peer_script_is_one_line_before_any_timing(run_cli, tmp_path, monkeypatch):
    from gluon_resnet import bench

    out = run_cli("gluon_resnet.bench", "--torch-python", sys.executable, "--peer", tmp_path / "nope.py")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(f"error: --peer {tmp_path / 'nope.py'}: no such file") and out.stderr.count("\n") == 1
    monkeypatch.setattr(bench, "PEER", str(tmp_path / "missing" / "torch_resnet18_step.py"))
    with pytest.raises(bench.UserError, match="pass its path with --peer PATH"):
        bench.peer_script(None)
    assert bench.peer_script(__file__) == os.path.abspath(__file__)


def test_inference_figures_from_known_timings():
    from gluon_resnet.bench import inference_figures

    latency = {"mxnet": [0.002, 0.004, 0.003], "onnxruntime": [0.001, 0.0015, 0.003]}
    throughput = {"mxnet": [500.0, 300.0, 400.0], "onnxruntime": [800.0, 900.0, 1000.0]}
    assert inference_figures(latency, throughput) == pytest.approx({
        "mxnet_batch1_median_ms": 3.0, "mxnet_batch256_img_per_s": 400.0,
        "onnxruntime_batch1_median_ms": 1.5, "onnxruntime_batch256_img_per_s": 900.0,
        "batch1_ms_mxnet_over_onnxruntime": 2.0, "batch256_img_per_s_onnxruntime_over_mxnet": 2.25})


def test_bench_rejects_an_unknown_model_in_one_line(run_cli):
    out = run_cli("gluon_resnet.bench", "--model", "nope")
    assert out.returncode == 2 and out.stderr.startswith("error: unknown model 'nope'")
    assert len(out.stderr.strip().splitlines()) == 1


def test_bench_roofline_runs_without_the_baseline(run_cli):
    out = run_cli("gluon_resnet.bench", "--size", "16", "--batch-size", "8", "--steps", "1",
                  "--warmup", "1", "--rounds", "1", "--no-baseline")
    assert out.returncode == 0, out.stderr
    f = _figures(out.stdout)
    assert f["matmul_gflop_per_s"] > 1 and f["compute_gflop_per_s"] > 0
    assert "d2l_baseline_img_per_s" not in f


def test_train_work_is_three_passes_less_the_stem_input_gradient():
    from gluon_resnet.bench import train_gflop_per_step

    stem = 64 * 1 * 7 * 7 * 48 * 48  # 7x7 stride-2 conv, 1 -> 64 channels, 96x96 -> 48x48
    stage = 2 * 2 * 64 * 64 * 9 * 24 * 24  # first stage: four 3x3 convs, 64 -> 64 channels at 24x24
    later = sum(c * c // 2 * 9 * s * s + 3 * c * c * 9 * s * s + c * c // 2 * s * s
                for c, s in ((128, 12), (256, 6), (512, 3)))  # strided conv, three 3x3, 1x1 projection
    dense = 512 * 10
    forward = stem + stage + later + dense
    assert train_gflop_per_step("resnet18_d2l", 96, 4) * 1e9 == 2 * 4 * (3 * forward - stem)


def test_bench_by_pass_splits_the_convolution_time_from_onednn_log(run_cli):
    out = run_cli("gluon_resnet.bench", "--size", "16", "--batch-size", "8", "--steps", "1",
                  "--warmup", "0", "--rounds", "1", "--no-baseline", "--by-pass")
    assert out.returncode == 0, out.stderr
    f = _figures(out.stdout)
    for name in ("conv_forward", "conv_input_grad", "conv_weight_grad"):
        assert f[f"{name}_ms"] > 0 and f[f"{name}_gflop_per_s"] > 0
    # the forward and weight-gradient passes do the same work; the input gradient skips the stem
    forward_work = f["conv_forward_ms"] * f["conv_forward_gflop_per_s"]
    assert f["conv_weight_grad_ms"] * f["conv_weight_grad_gflop_per_s"] == pytest.approx(forward_work, rel=0.05)
    assert f["conv_input_grad_ms"] * f["conv_input_grad_gflop_per_s"] < forward_work
    # oneDNN's primitives run one after another inside the logged step
    assert 0 < f["onednn_share_of_step"] <= 1 and f["logged_step_ms"] > f["conv_forward_ms"]


def test_bench_by_pass_says_so_in_one_line_when_onednn_is_off(run_cli):
    out = run_cli("gluon_resnet.bench", "--size", "16", "--batch-size", "8", "--steps", "1", "--warmup", "0",
                  "--rounds", "1", "--no-baseline", "--by-pass",
                  env={"MXNET_MKLDNN_ENABLED": "0", "MXNET_STORAGE_FALLBACK_LOG_VERBOSE": "0"})
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.strip().splitlines() == [out.stderr.strip()] and "oneDNN logged no convolution" in out.stderr


def test_the_baseline_child_gets_mxnets_default_threads_unless_told(monkeypatch):
    import subprocess
    from gluon_resnet import bench

    seen = []

    def fake_run(cmd, env, **kwargs):
        seen.append(env.get("OMP_NUM_THREADS"))
        return subprocess.CompletedProcess(cmd, 0, stdout="21.5\n", stderr="")
    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    default = bench.build_parser().parse_args([])
    assert bench.baseline_in_child(default) == 21.5 and seen == [None]
    bench.baseline_in_child(bench.build_parser().parse_args(["--baseline-threads", "2"]))
    assert seen == [None, "2"]


def test_bench_inference_times_mxnet_and_onnxruntime_on_the_same_model(run_cli):
    out = run_cli("gluon_resnet.bench", "--inference", "--model", "fmnist_resnet8", "--size", "28",
                  "--steps", "1", "--rounds", "2", "--warmup", "0", env={"OMP_NUM_THREADS": "2"})
    assert out.returncode == 0, out.stderr
    assert "model: fmnist_resnet8 at 1x28x28" in out.stdout.splitlines()
    if os.path.exists("/proc/cpuinfo"):
        _says_which_cpu(out.stdout, threads=2)
    f = _figures(out.stdout)
    for runtime in ("mxnet", "onnxruntime"):
        assert f[f"{runtime}_batch1_median_ms"] > 0 and f[f"{runtime}_batch256_img_per_s"] > 0
