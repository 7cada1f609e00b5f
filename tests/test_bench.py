def test_bench_prints_every_figure_as_name_value(run_cli):
    out = run_cli("gluon_resnet.bench", "--size", "16", "--batch-size", "8", "--steps", "1",
                  "--warmup", "1", "--rounds", "2", "--workers", "0")
    assert out.returncode == 0, out.stderr
    figures = dict(line.split(": ") for line in out.stdout.strip().splitlines())
    figures = {name: float(value) for name, value in figures.items()}
    for name in ("compute_step_img_per_s", "end_to_end_img_per_s", "d2l_baseline_img_per_s"):
        assert figures[name] > 0
    assert abs(figures["end_to_end_over_compute"]
               - figures["end_to_end_img_per_s"] / figures["compute_step_img_per_s"]) < 0.02


def test_bench_rejects_an_unknown_model_in_one_line(run_cli):
    out = run_cli("gluon_resnet.bench", "--model", "nope")
    assert out.returncode == 2 and out.stderr.startswith("error: unknown model 'nope'")
    assert len(out.stderr.strip().splitlines()) == 1
