"""Chapter 5's budget search (chapters/budget_search.py): records, resumes and tabulates real runs."""
import importlib.util
import json

from helpers import ROOT


def load_search():
    spec = importlib.util.spec_from_file_location("budget_search", ROOT / "chapters" / "budget_search.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


search = load_search()
TINY = ["--depths", "20", "--kinds", "resnet", "plain", "--train-size", "40", "--test-size", "20", "--epochs", "2",
        "--batch-size", "20", "--size", "12", "--warmup-epochs", "0.5"]


def test_a_search_records_each_net_then_resumes_without_training_again(tmp_path, capsys):
    out = tmp_path / "search.jsonl"
    assert search.main([*TINY, "--out", str(out)]) == 0
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["net"] for r in runs] == ["cifar_resnet20", "cifar_plain20"]
    for r in runs:
        assert r["size"] == 12 and r["steps"] == 4 and len(r["train_error_per_epoch"]) == len(r["train_loss_per_epoch"]) == 2
        assert 0 <= r["train_error"] <= 1 and r["cpu_info"]["cores"] >= 1
    capsys.readouterr()
    assert search.main([*TINY, "--out", str(out)]) == 0  # everything is there already
    assert capsys.readouterr().out.count("skipped") == 2
    assert out.read_text().count("\n") == 2
    assert search.main(["--table", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| 12 | 40 | yes | 4 | step | 0.5 | 0 | cifar_plain20 |" in table


def test_bad_input_gets_one_line_and_exit_code_2(tmp_path, capsys):
    assert search.main(["--table", "--out", str(tmp_path / "none.jsonl")]) == 2
    assert capsys.readouterr().err.startswith("error: no runs in")
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    assert search.main([*TINY, "--out", str(bad)]) == 2
    assert "is not a JSON lines file" in capsys.readouterr().err


def record(depth, seed, epochs=3, size=16, augment=False, losses=None):
    return dict(net=f"cifar_resnet{depth}", kind="resnet", depth=depth, seed=seed, size=size, train_size=600, schedule="step",
                epochs=epochs, augment=augment, steps=5 * epochs, train_loss_per_epoch=losses or [0.5, 0.3, 0.2][:epochs])


def test_plot_draws_only_the_runs_of_the_budget_asked_for(tmp_path, capsys):
    out = tmp_path / "search.jsonl"
    runs = [record(20, 0), record(56, 0, losses=[0.6, 0.3, 0.1]), record(56, 1),
            record(56, 0, epochs=2), record(56, 0, augment=True), record(20, 0, size=28)]
    out.write_text("".join(json.dumps(r) + "\n" for r in runs))
    png = tmp_path / "crossing.png"
    flags = ["--plot", str(png), "--out", str(out), "--kinds", "resnet", "--depths", "20", "56", "--size", "16",
             "--epochs", "3", "--no-augment"]
    assert search.main(flags) == 0
    assert png.read_bytes().startswith(b"\x89PNG") and capsys.readouterr().out.strip().endswith(": 3 runs")
    args = search.parse_args(flags)
    assert [(r["depth"], r["seed"]) for r in search.matching(runs, args)] == [(20, 0), (56, 0), (56, 1)]


def test_plot_without_matching_runs_says_so_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "search.jsonl"
    out.write_text(json.dumps(record(20, 0)) + "\n")
    png = tmp_path / "crossing.png"
    assert search.main(["--plot", str(png), "--out", str(out), "--size", "16", "--epochs", "10", "--no-augment"]) == 2
    assert capsys.readouterr().err.startswith("error: no runs in") and not png.exists()
