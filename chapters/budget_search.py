"""Chapter 5's budget search: how many steps until deeper residual nets train better and deeper plain ones worse?

    python chapters/budget_search.py --depths 20 56 --kinds resnet --size 16 --epochs 6 --out runs/budget/search.jsonl
    python chapters/budget_search.py --table --out runs/budget/search.jsonl
    python chapters/budget_search.py --plot crossing.png --depths 20 56 --kinds resnet --size 16 --epochs 10 \
        --no-augment --out runs/budget/search.jsonl

Trains every (kind, depth, seed) asked for with ``gluon_resnet.loop.train`` and the paper's CIFAR
recipe in shape (SGD, lr 0.1 divided by 10 after 50 % and 75 % of the steps, momentum 0.9, weight
decay 1e-4, batch 128, flips and 2-pixel crops, an optional linear warm-up), hybridized, on
Fashion-MNIST resized to ``--size`` pixels a side, and appends one JSON line per net to
``--out``. A net whose settings are already in the file is skipped, so a killed search resumes
where it stopped. ``--table`` prints the file as a Markdown table; ``--plot`` draws the training loss
per epoch of the recorded nets that match the budget flags, and the deepest net's lead over the
shallowest, seed by seed. Seconds and images per second
are recorded with the CPU label, but only a run alone on the machine gives speed figures.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's gluon_resnet, whatever is installed

import gluon_resnet as gr  # noqa: E402  (sets the thread count before mxnet loads)
from gluon_resnet import data, runtime  # noqa: E402
from gluon_resnet.augment import Augment  # noqa: E402
from gluon_resnet.files import atomic_write  # noqa: E402
from gluon_resnet.loop import train  # noqa: E402
from gluon_resnet.settings import Settings  # noqa: E402

DEPTHS = (20, 32, 44, 56, 110)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/budget/search.jsonl", help="JSON lines file to append to (and resume from)")
    p.add_argument("--table", action="store_true", help="print --out as a Markdown table and exit")
    p.add_argument("--plot", metavar="PNG", help="draw the runs in --out that match --size, --epochs, "
                   "--no-augment, --kinds and --depths (every seed) into PNG and exit")
    p.add_argument("--depths", type=int, nargs="+", default=[20, 32, 56], choices=DEPTHS)
    p.add_argument("--kinds", nargs="+", default=["resnet", "plain"], choices=["resnet", "plain"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--size", type=int, default=28, help="image side in pixels; other than 28: bilinear resize")
    p.add_argument("--train-size", type=int, default=60000, help="class-balanced training images (60000: all)")
    p.add_argument("--test-size", type=int, default=10000, help="class-balanced test images")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--no-augment", dest="augment", action="store_false", help="no flips, no 2-pixel crops")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--schedule", default="step", choices=["step", "cosine", "onecycle", "constant"])
    p.add_argument("--warmup-epochs", type=float, default=0, help="linear warm-up from 0, in epochs (may be a fraction)")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--wd", type=float, default=1e-4)
    args = p.parse_args(argv)
    if args.warmup_epochs < 0:
        p.error("--warmup-epochs must be at least 0")
    for name in ("size", "train_size", "test_size", "epochs", "batch_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def read_runs(path):
    """The JSON lines already in ``path`` (none if it does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise gr.UserError(f"{path} is not a JSON lines file ({err}): pass another --out") from None


def plan(args):
    """The settings of each net to train, in the order asked for (seed, then kind, then depth)."""
    recipe = dict(size=args.size, train_size=args.train_size, test_size=args.test_size, epochs=args.epochs,
                  batch_size=args.batch_size, augment=args.augment, lr=args.lr, schedule=args.schedule,
                  warmup_epochs=args.warmup_epochs, momentum=args.momentum, wd=args.wd)
    return [dict(net=f"cifar_{kind}{depth}", kind=kind, depth=depth, seed=seed, **recipe)
            for seed in args.seeds for kind in args.kinds for depth in args.depths]


def train_one(settings, fmnist):
    """Train one net; its JSON record (the settings, per-epoch errors, final errors, seconds, CPU)."""
    s = settings
    augment = Augment(pad=2, flip=True) if s["augment"] else None
    train_images, train_labels = data.balanced_subset(fmnist.train_images, fmnist.train_labels, s["train_size"])
    test_images, test_labels = data.balanced_subset(fmnist.test_images, fmnist.test_labels, s["test_size"])
    train_iter = data.ArrayLoader(data.resize_images(train_images, s["size"]), train_labels, s["batch_size"],
                                  shuffle=True, seed=s["seed"], augment=augment)
    test_iter = data.ArrayLoader(data.resize_images(test_images, s["size"]), test_labels, 250)
    recipe = Settings(epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"], momentum=s["momentum"], wd=s["wd"],
                      schedule=s["schedule"], warmup_epochs=s["warmup_epochs"], seed=s["seed"], quiet=True)
    begin = time.perf_counter()
    history = train(gr.get_model(s["net"]), train_iter, test_iter, recipe, gr.devices("cpu")[0],
                    log=lambda line: print(f"{s['net']} seed {s['seed']}: {line}", flush=True))
    return dict(settings, steps=len(train_iter) * s["epochs"],
                train_error_per_epoch=[round(1 - row["train_acc"], 4) for row in history],
                train_loss_per_epoch=[round(row["train_loss"], 4) for row in history],
                test_error_per_epoch=[round(1 - row["test_acc"], 4) for row in history],
                train_error=round(1 - history[-1]["train_acc"], 4), test_error=round(1 - history[-1]["test_acc"], 4),
                seconds=round(time.perf_counter() - begin, 1),
                images_per_sec=round(sum(r["examples_per_sec"] for r in history) / len(history), 1),
                cpu=runtime.cpu_description(), cpu_info=runtime.cpu_info(), load=round(os.getloadavg()[0], 2))


def search(args):
    out = Path(args.out)
    runs = read_runs(out)
    keys = plan(args)[0].keys()
    done = [{k: run.get(k) for k in keys} for run in runs]
    fmnist = gr.load_fashion_mnist()
    for settings in plan(args):
        if settings in done:
            print(f"{settings['net']} seed {settings['seed']}: already in {out}, skipped", flush=True)
            continue
        record = train_one(settings, fmnist)
        runs = read_runs(out) + [record]  # re-read: another search may share the file
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, "".join(json.dumps(run) + "\n" for run in runs))
        print(f"{settings['net']} seed {settings['seed']}: train error {record['train_error']:.4f}, "
              f"test error {record['test_error']:.4f}, {record['seconds'] / 60:.1f} min", flush=True)


def table(runs):
    """A Markdown table of the runs, one row per net, grouped by budget."""
    key = lambda r: (r.get("size", 28), r["train_size"], r["augment"], r["steps"], r["schedule"], r["seed"], r["kind"], r["depth"])  # noqa: E731
    lines = ["| size | images | aug | steps | schedule | warm-up | seed | net | train error | test error | train error per epoch | min |",
             "|---:|---:|:-:|---:|:-:|---:|---:|:--|---:|---:|:--|---:|"]
    for r in sorted(runs, key=key):
        lines.append(f"| {r.get('size', 28)} | {r['train_size']} | {'yes' if r['augment'] else 'no'} | {r['steps']} | "
                     f"{r['schedule']} | {r['warmup_epochs']:g} | "
                     f"{r['seed']} | {r['net']} | {r['train_error']:.4f} | {r['test_error']:.4f} | "
                     f"{' '.join(f'{e:.3f}' for e in r['train_error_per_epoch'])} | {r['seconds'] / 60:.1f} |")
    return "\n".join(lines)


def matching(runs, args):
    """The recorded runs with the budget of ``args`` (size, epochs, augmentation, kinds, depths), any seed."""
    return [r for r in runs if r.get("size", 28) == args.size and r["epochs"] == args.epochs
            and r["augment"] == args.augment and r["kind"] in args.kinds and r["depth"] in args.depths
            and "train_loss_per_epoch" in r]


def plot(runs, args, path):
    """Training loss per epoch of each matching net (left) and, per seed and kind, the deepest net's
    training loss minus the shallowest's (right: below zero, the deeper net trains better)."""
    from matplotlib.figure import Figure

    from gluon_resnet import plots

    chosen = matching(runs, args)
    if not chosen:
        raise gr.UserError(f"no runs in {args.out} with --size {args.size} --epochs {args.epochs}"
                           f"{'' if args.augment else ' --no-augment'} and the --kinds/--depths asked for: "
                           "run the search with those flags first")
    fig = Figure(figsize=(11, 4), layout="constrained")
    losses, gaps = fig.subplots(1, 2)
    depths = sorted({r["depth"] for r in chosen})
    seeds = sorted({r["seed"] for r in chosen})
    steps_of = lambda r: [r["steps"] // r["epochs"] * (e + 1) for e in range(r["epochs"])]  # noqa: E731
    for r in sorted(chosen, key=lambda r: (r["kind"], r["depth"], r["seed"])):
        losses.plot(steps_of(r), r["train_loss_per_epoch"], marker=".", color=f"C{depths.index(r['depth'])}",
                    ls=("-", "--", ":", "-.")[seeds.index(r["seed"]) % 4], label=f"{r['net']} seed {r['seed']}")
    by = {(r["kind"], r["depth"], r["seed"]): r for r in chosen}
    for kind in sorted({r["kind"] for r in chosen}):
        for seed in seeds:
            present = [d for d in depths if (kind, d, seed) in by]
            if len(present) < 2:
                continue
            deep, shallow = by[kind, present[-1], seed], by[kind, present[0], seed]
            gaps.plot(steps_of(deep), [a - b for a, b in zip(deep["train_loss_per_epoch"], shallow["train_loss_per_epoch"])],
                      marker=".", ls=("-", "--", ":", "-.")[seeds.index(seed) % 4],
                      label=f"{kind}{present[-1]} - {kind}{present[0]}, seed {seed}")
    first_steps = chosen[0]["steps"]
    gaps.axhline(0, color="0.4", lw=0.8)
    if all(r["schedule"] == "step" for r in chosen):  # the paper's lr drops, after 50 % and 75 % of the steps
        for ax in (losses, gaps):
            for share in (0.5, 0.75):
                ax.axvline(first_steps * share, color="0.6", lw=0.8, ls=":")
    first = chosen[0]
    budget = (f"{first['train_size']:,} images at {args.size}x{args.size}, {'flips and crops' if args.augment else 'no augmentation'}, "
              f"{first['steps']:,} steps")
    losses.set(xlabel="training steps (each point: an epoch's mean; dotted: lr / 10)", ylabel="training loss", yscale="log",
               title=f"training loss ({budget})")
    plots.log_axis_ticks(losses, [v for r in chosen for v in r["train_loss_per_epoch"]])
    gaps.set(xlabel="training steps (each point: an epoch's mean)", ylabel="deeper minus shallower training loss",
             title="below zero: the deeper net trains better")
    for ax in (losses, gaps):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    plots.save_figure(fig, path)
    return chosen


def main(argv=None):
    args = parse_args(argv)
    try:
        if args.plot:
            chosen = plot(read_runs(args.out), args, args.plot)
            print(f"wrote {args.plot}: {len(chosen)} runs")
        elif args.table:
            runs = read_runs(args.out)
            if not runs:
                raise gr.UserError(f"no runs in {args.out}: run the search first, or pass its --out")
            print(table(runs))
        else:
            search(args)
    except gr.UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
