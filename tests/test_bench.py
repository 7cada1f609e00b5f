import pytest

from gluon_resnet.runtime import cpu_info

TEXT = ("cpu", "cpu_model", "cpu_family_model", "onednn_isa")


def _figures(stdout):
    """The numeric ``name: value`` lines of bench's output (the CPU lines are text)."""
    lines = dict(line.split(": ", 1) for line in stdout.strip().splitlines())
    return {name: float(value) for name, value in lines.items() if name not in TEXT}


def _says_which_cpu(stdout):
    text = dict(line.split(": ", 1) for line in stdout.strip().splitlines())
    assert text["onednn_isa"] == cpu_info()["isa"] and text["cpu"].startswith(cpu_info()["model"])
    assert text["cpu_model"] == cpu_info()["model"] and int(text["cpu_cores"]) == cpu_info()["cores"]
    assert int(text["omp_threads"]) >= 1


def test_bench_prints_every_figure_as_name_value(run_cli):
    out = run_cli("gluon_resnet.bench", "--size", "16", "--batch-size", "8", "--steps", "1",
                  "--warmup", "1", "--rounds", "2", "--workers", "0")
    assert out.returncode == 0, out.stderr
    figures = _figures(out.stdout)
    _says_which_cpu(out.stdout)
    for name in ("compute_step_img_per_s", "end_to_end_img_per_s", "d2l_baseline_img_per_s"):
        assert figures[name] > 0
    assert abs(figures["end_to_end_over_compute"]
               - figures["end_to_end_img_per_s"] / figures["compute_step_img_per_s"]) < 0.02


def test_bench_rejects_an_unknown_model_in_one_line(run_cli):
    out = run_cli("gluon_resnet.bench", "--model", "nope")
    assert out.returncode == 2 and out.stderr.startswith("error: unknown model 'nope'")
    assert len(out.stderr.strip().splitlines()) == 1


def test_bench_roofline_figures_agree_with_each_other(run_cli):
    out = run_cli("gluon_resnet.bench", "--size", "16", "--batch-size", "8", "--steps", "1",
                  "--warmup", "1", "--rounds", "1", "--no-baseline")
    assert out.returncode == 0, out.stderr
    f = _figures(out.stdout)
    assert f["matmul_gflop_per_s"] > 1
    # printed with two decimals, so compare loosely
    assert f["compute_gflop_per_s"] == pytest.approx(
        f["train_gflop_per_step"] * f["compute_step_img_per_s"] / 8, rel=0.03, abs=0.01)
    assert f["compute_share_of_matmul"] == pytest.approx(
        f["compute_gflop_per_s"] / f["matmul_gflop_per_s"], abs=0.01)


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
                  "--steps", "1", "--rounds", "2", "--warmup", "0")
    assert out.returncode == 0, out.stderr
    assert "model: fmnist_resnet8 at 1x28x28" in out.stdout.splitlines()
    _says_which_cpu(out.stdout)
    f = _figures(out.stdout.replace("model: fmnist_resnet8 at 1x28x28\n", ""))
    for runtime in ("mxnet", "onnxruntime"):
        assert f[f"{runtime}_batch1_median_ms"] > 0 and f[f"{runtime}_batch256_img_per_s"] > 0
    assert f["batch1_ms_mxnet_over_onnxruntime"] == pytest.approx(
        f["mxnet_batch1_median_ms"] / f["onnxruntime_batch1_median_ms"], rel=0.05)
