"""Accuracy against minutes for a set of finished runs: ``python -m gluon_resnet.frontier --help``.

Each run folder (``train --out DIR``) keeps its recipe, its CPU and its per-epoch history in
``metrics.json``. Runs whose recipes differ only in ``--seed`` make one point of the frontier:

- its **minutes** are the fastest seed's time in the training loop (training plus the test pass
  after each epoch; process start-up and reading the data are not in it), so run one seed of each
  recipe alone on the machine and the others however you like;
- its **accuracy** is the seeds' final test accuracy, mean and range.

For example::

    python -m gluon_resnet.frontier runs/frontier/*/ --png docs/frontier.png

prints a Markdown table, one row per recipe, and draws test accuracy against minutes (one line per
recipe family, i.e. per recipe apart from ``--epochs``; bars: the seeds' range).

``--ensembles K [K ...]`` adds a point for every recipe with at least K seeds: K of its nets trained one
after another and scored together (``evaluate DIR1 DIR2 ...``), so its minutes are K times the
fastest seed's and its accuracy is the mean and range over every choice of K of the seeds.
"""
import functools
import itertools
import json
import re
import sys
from pathlib import Path

from .cli import ArgumentParser, friendly, number
from .errors import UserError
from .runtime import cpu_description


def read_metrics(directory):
    """The finished run in ``directory`` as a dict: recipe, seed, CPU label, final test accuracy, minutes."""
    path = Path(directory) / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
        config, history = metrics["config"], metrics["history"]
    except (FileNotFoundError, NotADirectoryError):
        raise UserError(f"{directory} is not a run folder (no metrics.json): pass folders written by "
                        "`python -m gluon_resnet.train --out DIR`") from None
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"{path} is not a run's metrics file ({err.__class__.__name__}: {err})") from None
    if not metrics.get("finished") or not history:
        done = history[-1]["epoch"] if history else 0
        raise UserError(f"{directory} has not finished (epoch {done} of {config.get('epochs')}): finish it with "
                        f"python -m gluon_resnet.train --resume {directory}, or leave it out")
    env = metrics.get("environment", {})
    from .settings import Settings

    # runs saved before a flag existed lack its key: fill in its default, so they group with newer runs
    config = Settings.from_recipe(config).recipe()
    return {"dir": str(directory), "config": config, "seed": config.get("seed"),
            "test_acc": history[-1]["test_acc"], "train_acc": history[-1]["train_acc"],
            "minutes": sum(row["seconds"] for row in history) / 60,
            "cpu": cpu_description(env["cpu"]) if "cpu" in env else "unknown CPU",
            "load": (env.get("load_average") or [None])[0]}


def recipe_label(config):
    """The ``train`` flags of a recipe (``--preset fast --epochs 12``), leaving out ``--seed``."""
    from .settings import Settings  # the registry and MXNet load only when a table is made

    command = Settings.from_recipe({k: v for k, v in config.items() if k != "seed"}).command()
    label = command.replace("python -m gluon_resnet.train", "").strip()
    return label or "(the defaults)"


def family_label(config):
    """The recipe apart from its length, for the plot's legend: ``--preset fast --epochs N``.

    A preset that is another trained longer (``long`` is ``best`` for 70 epochs) falls in that one's family."""
    label = recipe_label({**config, "epochs": -1})  # no preset has -1 epochs, so none is matched
    return re.sub(r"--epochs -1\b", "--epochs N", label)


def points(runs):
    """One point per recipe (the runs grouped apart from their seeds), in order of minutes."""
    groups = {}
    for run in runs:
        key = json.dumps({k: v for k, v in run["config"].items() if k != "seed"}, sort_keys=True)
        groups.setdefault(key, []).append(run)
    result = []
    for group in groups.values():
        seeds = [r["seed"] for r in group]
        if len(set(seeds)) < len(seeds):
            raise UserError(f"two runs of one recipe share a seed ({', '.join(r['dir'] for r in group)}): "
                            "pass each seed once")
        accs = [r["test_acc"] for r in group]
        fastest = min(group, key=lambda r: r["minutes"])
        config = group[0]["config"]
        result.append({"recipe": recipe_label(config), "family": family_label(config),
                       "epochs": config["epochs"], "seeds": sorted(seeds), "minutes": fastest["minutes"],
                       "cpu": fastest["cpu"], "load": fastest["load"], "mean": sum(accs) / len(accs),
                       "low": min(accs), "high": max(accs), "runs": group})
    return sorted(result, key=lambda p: (p["minutes"], p["recipe"]))


def ensemble_points(runs, k, probabilities=None):
    """For each recipe with at least ``k`` seeds, one point for ``k`` of its nets scored together.

    ``probabilities(dir)`` gives a run's (test labels, class probabilities); by default the run is
    reloaded and scored as it scored itself (``evaluate.run_probabilities``)."""
    import numpy as np

    from .evaluate import ensemble_labels, run_probabilities

    probabilities = probabilities or run_probabilities
    result = []
    for point in points(runs):
        if len(point["runs"]) < k:
            continue
        scored = {r["seed"]: probabilities(r["dir"]) for r in point["runs"]}
        accs, combos = [], []
        for seeds in itertools.combinations(sorted(scored), k):
            labels = scored[seeds[0]][0]
            accs.append(float((ensemble_labels([scored[s][1] for s in seeds]) == labels).mean()))
            combos.append("+".join(map(str, seeds)))
        result.append({**point, "ensemble": k, "recipe_family": point["family"],
                       "family": f"{point['family']}, {k} seeds averaged", "seeds": combos,
                       "minutes": k * point["minutes"], "mean": float(np.mean(accs)), "low": min(accs),
                       "high": max(accs), "tag": f"{k}x{point['epochs']} ep"})
    if not result:
        raise UserError(f"--ensembles {k}: no recipe among these runs has {k} seeds")
    return result


def table(rows):
    """The points as a Markdown table."""
    lines = ["| recipe (`train` flags) | epochs | seeds | minutes (fastest seed) | test acc, mean | range | CPU of the timed run |",
             "|:--|--:|:--|--:|--:|:--|:--|"]
    for p in rows:
        together = f" ({p['ensemble']} seeds averaged)" if p.get("ensemble") else ""
        lines.append(f"| `{p['recipe']}`{together} | {p['epochs']} | {', '.join(map(str, p['seeds']))} | {p['minutes']:.1f} | "
                     f"**{p['mean']:.4f}** | {p['low']:.4f}-{p['high']:.4f} | {p['cpu']} |")
    return "\n".join(lines)


def plot(rows, path, title=None):
    """Test accuracy against minutes: one line per recipe family, the seeds' range as bars; a recipe's
    averaged nets share its colour, with a dashed (2 nets) or dotted (3) line. Returns the figure."""
    from matplotlib.figure import Figure

    from .plots import save_figure

    families = list(dict.fromkeys(p["family"] for p in rows))
    # one colour per recipe, one line style per number of nets averaged (1, 2, 3, ...)
    recipes = list(dict.fromkeys(p.get("recipe_family", p["family"]) for p in rows))
    styles = {1: ("-", "o"), 2: ("--", "s"), 3: (":", "^")}
    ncol = 2 if max(map(len, families)) <= 50 else 1  # long recipes get the legend's full width
    fig = Figure(figsize=(7.5, 4.6 + 0.16 * -(-len(families) // ncol)), layout="constrained")
    ax = fig.subplots()
    for family in families:
        pts = [p for p in rows if p["family"] == family]
        color = f"C{recipes.index(pts[0].get('recipe_family', family)) % 10}"
        line, marker = styles.get(pts[0].get("ensemble") or 1, ("-.", "D"))
        x, y = [p["minutes"] for p in pts], [p["mean"] for p in pts]
        err = [[p["mean"] - p["low"] for p in pts], [p["high"] - p["mean"] for p in pts]]
        ax.errorbar(x, y, yerr=err, marker=marker, linestyle=line, capsize=3, color=color, label=family)
        for p in pts:
            ax.annotate(p.get("tag", f"{p['epochs']} ep"), (p["minutes"], p["mean"]), textcoords="offset points",
                        xytext=(4, -11), fontsize=7, color=color)
    together = " (K seeds averaged: K times that)" if any(p.get("ensemble") for p in rows) else ""
    ax.set(xlabel=f"minutes in the training loop of the fastest seed's run{together}",
           ylabel="test accuracy (mean of the seeds)",
           title=title or "Fashion-MNIST: accuracy against minutes")
    ax.margins(x=0.1)  # room for the last point's label
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", ncol=ncol, fontsize=7)  # below the axes, off the points
    save_figure(fig, path)
    return fig


def build_parser():
    p = ArgumentParser(prog="python -m gluon_resnet.frontier", description=__doc__.split("\n\n")[0],
                       epilog="Each point's minutes come from its fastest seed: time one seed of each recipe alone on "
                              "the machine. Runs of one recipe must have different seeds.")
    p.add_argument("runs", nargs="+", metavar="DIR", help="finished run folders (train --out DIR)")
    p.add_argument("--png", metavar="PATH", help="also draw accuracy against minutes into PATH")
    p.add_argument("--title", help="the plot's title (say the CPU)")
    p.add_argument("--ensembles", type=number(int, "--ensembles", 2), nargs="+", metavar="K",
                   help="also score K seeds of each recipe together (their mean class probabilities), for "
                        "each K given: minutes K times the fastest seed's, accuracy over every choice of K seeds")
    return p


@friendly
def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.png and not re.search(r"\.png$", args.png, re.IGNORECASE):
        raise UserError(f"--png {args.png}: the plot is a PNG file, name it *.png")
    runs = [read_metrics(d) for d in args.runs]
    rows = points(runs)
    if args.ensembles:
        from .evaluate import run_probabilities

        scored = functools.lru_cache(maxsize=None)(run_probabilities)  # each net is scored once for all K
        for k in sorted(set(args.ensembles)):
            rows = sorted(rows + ensemble_points(runs, k, scored), key=lambda p: p["minutes"])
    print(table(rows))
    if args.png:
        plot(rows, args.png, args.title)
        print(f"wrote {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
