"""The frontier (gluon_resnet.frontier): finished run folders -> one point per recipe, a table and a plot."""
import dataclasses

import mxnet as mx
import numpy as np
import pytest
from helpers import epoch_rows, save_run

from gluon_resnet import evaluate, frontier, get_model
from gluon_resnet.errors import UserError
from gluon_resnet.settings import PRESETS

ENV = {"cpu": {"model": "AMD EPYC", "generation": "Zen 4", "family": "25", "model_number": "17", "cores": 2,
               "threads": 2, "isa": "avx512_core_bf16"}, "load_average": [0.1, 0.1, 0.1]}


def write_run(folder, settings, accs, seconds, finished=True):
    """A run folder as `train --out` leaves it, through the real Saver: one row per accuracy in ``accs``."""
    net = get_model("simple_residual_cnn")
    net.initialize(mx.init.Xavier())
    net(mx.np.zeros((1, 1, 28, 28)))
    rows = epoch_rows(len(accs), seconds=seconds)
    for row, acc in zip(rows, accs):
        row["test_acc"] = acc
    settings = settings.but(model="simple_residual_cnn", epochs=len(accs) + (0 if finished else 1))
    save_run(folder, net, settings, rows, environment=ENV)
    return folder


def test_seeds_of_one_recipe_make_one_point_timed_by_the_fastest_seed(tmp_path, capsys):
    short, long = PRESETS["fast"].but(epochs=2), PRESETS["fast"].but(epochs=3)
    dirs = [write_run(tmp_path / "a0", short.but(seed=0), [0.5, 0.90], 60),
            write_run(tmp_path / "a1", short.but(seed=1), [0.5, 0.92], 90),   # slower: ran beside another job
            write_run(tmp_path / "b0", long.but(seed=0), [0.5, 0.6, 0.93], 60)]
    png = tmp_path / "frontier.png"
    assert frontier.main([*map(str, dirs), "--png", str(png)]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [line for line in out if line.startswith("| `")]
    assert len(rows) == 2
    assert "--epochs 2" in rows[0] and "| 0, 1 | 2.0 | **0.9100** | 0.9000-0.9200 |" in rows[0]
    assert "--epochs 3" in rows[1] and "| 0 | 3.0 | **0.9300** |" in rows[1] and "Zen 4" in rows[1]
    assert "--seed" not in rows[0] and png.read_bytes().startswith(b"\x89PNG")


def test_runs_saved_before_a_flag_existed_group_with_newer_runs_of_their_recipe(tmp_path, capsys):
    import json

    settings = PRESETS["fast"].but(epochs=2)
    old, new = write_run(tmp_path / "old", settings.but(seed=0), [0.5, 0.90], 60), \
        write_run(tmp_path / "new", settings.but(seed=1), [0.5, 0.92], 60)
    metrics = json.loads((old / "metrics.json").read_text())
    del metrics["config"]["cutmix"], metrics["config"]["mixup"]  # as train wrote it before --cutmix/--mixup
    (old / "metrics.json").write_text(json.dumps(metrics))
    assert frontier.main([str(old), str(new)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| `")]
    assert len(rows) == 1 and "| 0, 1 |" in rows[0] and "**0.9100**" in rows[0]


def test_a_preset_trained_longer_or_shorter_stays_in_its_base_recipe_family():
    best, fast, long = PRESETS["best"], PRESETS["fast"], PRESETS["long"]
    assert frontier.recipe_label(dataclasses.asdict(best)) == "--preset best"
    assert frontier.recipe_label(dataclasses.asdict(fast.but(epochs=21))) == "--preset fast --epochs 21"
    for settings in (fast, fast.but(epochs=3), fast.but(epochs=21)):
        assert frontier.family_label(dataclasses.asdict(settings)) == "--preset fast --epochs N"
    for settings in (best, best.but(epochs=3), best.but(epochs=70)):  # fast's recipe on another net, whitened
        assert frontier.family_label(dataclasses.asdict(settings)) == "--preset best --epochs N"
    # long is best trained longer with a first layer that learns; best before the whitened layer is that
    # recipe for 35 epochs, so its runs and long's draw one line
    unwhitened = best.but(whiten=False)
    assert frontier.recipe_label(dataclasses.asdict(unwhitened)) == "--preset best --no-whiten"
    for settings in (unwhitened, long):
        assert frontier.family_label(dataclasses.asdict(settings)) == "--preset long --epochs N"
    erasing = unwhitened.but(crop_pad=0, erase=0.25)  # best before crops, trained longer too
    assert frontier.recipe_label(dataclasses.asdict(erasing)) == "--preset best --crop-pad 0 --erase 0.25 --no-whiten"
    assert frontier.recipe_label(dataclasses.asdict(erasing.but(epochs=70))) == "--preset long --crop-pad 0 --erase 0.25"
    for settings in (erasing, erasing.but(epochs=70)):
        assert frontier.family_label(dataclasses.asdict(settings)) == "--preset long --epochs N --crop-pad 0 --erase 0.25"
    assert frontier.recipe_label(dataclasses.asdict(long.but(wd=5e-4))) == "--preset long --wd 0.0005"
    assert frontier.family_label(dataclasses.asdict(fast.but(wd=1e-4))) == "--preset fast --epochs N --wd 0.0001"


def test_unfinished_runs_repeated_seeds_and_other_folders_are_refused(tmp_path, capsys):
    def refused(*argv):
        with pytest.raises(SystemExit) as exit_info:
            frontier.main(list(map(str, argv)))
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and len(err.splitlines()) == 1
        return err

    done = write_run(tmp_path / "done", PRESETS["fast"].but(epochs=1), [0.8], 10)
    again = write_run(tmp_path / "again", PRESETS["fast"].but(epochs=1), [0.81], 10)
    half = write_run(tmp_path / "half", PRESETS["fast"], [0.8], 10, finished=False)
    assert "has not finished (epoch 1 of 2)" in refused(half)
    assert "share a seed" in refused(done, again)
    assert "is not a run folder" in refused(tmp_path)
    (tmp_path / "done.log").write_text("a log beside the run folder, caught by a shell glob\n")
    assert "done.log is not a run folder" in refused(done, tmp_path / "done.log")
    assert "name it *.png" in refused(done, "--png", tmp_path / "plot.svg")
    assert not (tmp_path / "plot.svg").exists()


def test_ensemble_points_average_every_choice_of_k_seeds(tmp_path):
    fast = PRESETS["fast"].but(epochs=2)
    runs = [frontier.read_metrics(write_run(tmp_path / f"s{seed}", fast.but(seed=seed), [0.5, 0.9], 60 + seed))
            for seed in range(3)]
    labels = np.array([0, 1])
    probs = {"s0": [[0.9, 0.1], [0.6, 0.4]],     # alone: first image right, second wrong
             "s1": [[0.4, 0.6], [0.1, 0.9]],     # alone: first wrong, second right
             "s2": [[0.05, 0.95], [0.95, 0.05]]}  # both wrong, and sure of it
    point, = frontier.ensemble_points(runs, 2, lambda d: (labels, np.array(probs[d.rsplit("/", 1)[-1]])))
    # s0+s1 get both images right, which neither does alone; s0+s2 and s1+s2 get neither
    assert point["seeds"] == ["0+1", "0+2", "1+2"] and point["minutes"] == pytest.approx(2 * 2.0)  # twice s0, the fastest: 2 epochs of 60 s
    assert (point["mean"], point["low"], point["high"]) == pytest.approx((1 / 3, 0.0, 1.0))
    with pytest.raises(UserError, match="no recipe among these runs has 4 seeds"):
        frontier.ensemble_points(runs, 4, lambda d: (labels, np.array(probs[d.rsplit("/", 1)[-1]])))


def test_ensembles_flag_scores_the_saved_nets_as_evaluate_does(tmp_path, capsys):
    fast = PRESETS["fast"].but(epochs=1, tta=False)
    dirs = [write_run(tmp_path / f"s{seed}", fast.but(seed=seed), [0.8], 30) for seed in (0, 1)]
    assert frontier.main([*map(str, dirs), "--ensembles", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| `")]
    assert len(rows) == 2 and "(2 seeds averaged) | 1 | 0+1 | 1.0 |" in rows[1]
    together = evaluate.evaluate_ensemble(dirs)["test_acc"]
    assert f"**{together:.4f}**" in rows[1]


def test_the_plot_gives_a_recipe_one_colour_and_its_averaged_nets_their_own_line_style(tmp_path):
    def point(family, minutes, ensemble=None):  # as points() and ensemble_points() give them
        averaged = {"ensemble": ensemble, "tag": f"{ensemble}x3 ep", "recipe_family": family,
                    "family": f"{family}, {ensemble} seeds averaged"} if ensemble else {}
        return {"family": family, "minutes": minutes, "mean": 0.9, "low": 0.89, "high": 0.91, "epochs": 3, **averaged}
    rows = [point("--preset fast --epochs N", 1), point("--preset best --epochs N", 2),
            point("--preset fast --epochs N", 2, 2), point("--preset best --epochs N", 6, 3)]
    fig = frontier.plot(rows, tmp_path / "plot.png")
    lines = {bars.get_label(): bars.lines[0] for bars in fig.axes[0].containers}  # errorbar: (line, caps, bars)
    assert len(lines) == 4 and (tmp_path / "plot.png").exists()
    fast, best = lines["--preset fast --epochs N"], lines["--preset best --epochs N"]
    fast2, best3 = lines["--preset fast --epochs N, 2 seeds averaged"], lines["--preset best --epochs N, 3 seeds averaged"]
    assert fast.get_color() == fast2.get_color() != best.get_color() == best3.get_color()
    assert len({line.get_linestyle() for line in (fast, fast2, best3)}) == 3
    assert fig.legends and not fig.axes[0].get_legend()  # the legend sits below the axes, off the points


# ---------------------------------------------------------------------------- docs/levers.py

def _levers_script():
    import importlib.util
    from helpers import ROOT
    spec = importlib.util.spec_from_file_location("levers", ROOT / "docs" / "levers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, ROOT


def test_the_lever_figure_uses_the_frontier_pages_own_numbers():
    """Every accuracy the figure copies is printed on docs/frontier.md, and every row pairs its seeds."""
    levers, root = _levers_script()
    page = (root / "docs" / "frontier.md").read_text(encoding="utf-8")
    missing = [(name, acc) for _, rows in levers.LEVERS for name, lever, recipe in rows
               for acc in lever + recipe if f"{acc:.4f}" not in page]
    assert not missing, missing
    for _, rows in levers.LEVERS:
        for name, lever, recipe in rows:
            assert len(lever) == len(recipe) >= 2, name
    with pytest.raises(ValueError, match="seed by seed"):
        levers.differences([0.94, 0.95], [0.94])


def test_the_lever_figure_is_written_and_bad_arguments_exit_2(tmp_path, capsys):
    levers, _ = _levers_script()
    assert levers.main([str(tmp_path / "levers.txt")]) == 2
    assert not (tmp_path / "levers.txt").exists()
    assert levers.main([str(tmp_path / "levers.png")]) == 0
    assert (tmp_path / "levers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "one-pixel crops instead of erasing (best)" in out and "+0.23" in out
