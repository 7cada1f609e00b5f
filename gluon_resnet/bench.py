"""Training throughput, measured in one run: ``python -m gluon_resnet.bench --help``.

Prints ``name: value`` lines for one model, image size and batch size (default: the lesson's
ResNet-18 at 1x96x96, batch 128):

- ``compute_step_img_per_s``: hybridized train steps on one batch already in memory;
- ``end_to_end_img_per_s``: the real loop (``loop.train_epoch``) over real images from ``ArrayLoader``;
- ``d2l_baseline_img_per_s``: the d2l way: the lesson's imperative blocks, per-sample
  ``Resize``/``ToTensor`` transforms through a Gluon ``DataLoader``, MXNet's default threads
  (a child process that loads MXNet before this package can set ``OMP_NUM_THREADS``);
- ``torch_*`` (with ``--torch-python``): the PyTorch peer script (``--peer``), NCHW and channels-last;
- the ratios between them, and the load average, since other work on the machine slows every figure;
- the CPU (``cpu``, ``cpu_model``, ``cpu_family_model``, ``cpu_generation``, ``cpu_cores``, ``omp_threads``,
  ``onednn_isa``: see ``runtime.cpu_info``),
  since the same step runs 1.3-2x faster on a Zen 4 with AVX-512 than on the AVX2 EPYCs (README: Results);
- a roofline: the step's floating-point work (``train_gflop_per_step``: forward, input-gradient and
  weight-gradient convolutions and dense layers), the rate the compute-only step achieves, and MXNet's
  own float32 matrix product on this machine (``matmul_gflop_per_s``) as the practical ceiling;
- with ``--by-pass``: oneDNN's milliseconds and GFLOP/s for the convolutions' forward, input-gradient
  and weight-gradient passes of one step (from a child's ``DNNL_VERBOSE`` log), to show which kernels
  hold a step back.

Every figure is the median of ``--rounds`` timings of ``--steps`` steps each. Compute-only and
end-to-end rounds alternate, and the PyTorch peer runs once per round, so a slow spell on a shared
machine hits all of them alike instead of deciding a ratio.
"""
import statistics
import os
import subprocess
import sys
import time

import gluon_resnet  # noqa: F401  (sets the thread count before mxnet loads)
import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon.data.vision import transforms

from .cli import ArgumentParser, friendly, number
from .data import ArrayLoader, load_fashion_mnist, resize_images
from .errors import UserError
from .loop import cross_entropy, make_trainer, train_epoch
from .models import get_model, hybridize_static
from .shapes import layer_table

# Where the PyTorch peer script sits when the checkout lies next to the project's shared/ folder.
PEER = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "peers",
                                     "torch_resnet18_step.py"))


def real_images(count, size, seed=0):
    """``count`` real training images (uint8) resized once to ``size`` and their labels."""
    data = load_fashion_mnist()
    take = np.random.default_rng(seed).permutation(len(data.train_labels))[:count]
    return resize_images(data.train_images[take], size), data.train_labels[take]


def timed_steps(step, steps):
    """Seconds for ``steps`` calls of ``step()``."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - start


def layer_macs(model, size, kinds=("Conv2D", "Dense")):
    """Multiply-adds of each layer of ``kinds`` (convolutions and dense layers by default) for one
    1 x size x size image, in order."""
    rows = layer_table(get_model(model), (1, 1, size, size), depth=99)
    return [r["macs"] for r in rows if r["kind"] in kinds]


def train_gflop_per_step(model, size, batch_size):
    """Floating-point work of one training step, in GFLOP: 2 FLOP per multiply-add, counted for the
    forward pass, the input gradient and the weight gradient of every convolution and dense layer.
    The first layer needs no input gradient (the images take none)."""
    layers = layer_macs(model, size)
    return 2 * batch_size * (3 * sum(layers) - layers[0]) / 1e9


def matmul_gflop_per_s(n=2048, repeats=5):
    """GFLOP/s of MXNet's float32 ``dot`` of two n x n matrices, best of ``repeats``: what the cores
    give a dense kernel, the practical ceiling for the convolutions."""
    a, b = mx.nd.random.uniform(shape=(n, n)), mx.nd.random.uniform(shape=(n, n))
    mx.nd.dot(a, b).wait_to_read()
    best = min(timed_steps(lambda: mx.nd.dot(a, b).wait_to_read(), 1) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def compiled(model, ctx=None):
    """A freshly initialised, hybridized (static) ``model`` and its plain-SGD trainer, as timed here."""
    net = get_model(model)
    net.initialize(mx.init.Xavier(), ctx=ctx or mx.cpu())
    hybridize_static(net)
    return net, make_trainer(net, lr=0.05)


def train_step(net, trainer, X, y):
    """One training step on the batch ``(X, y)``, queued; returns the per-example losses."""
    with autograd.record():
        loss = cross_entropy(net(X), y)
    loss.backward()
    trainer.step(len(y))
    return loss


def compute_and_end_to_end(model, size, batch_size, steps, warmup, ctx, rounds=1):
    """(compute-only img/s, end-to-end img/s) of the hybridized network on the same batches:
    medians over ``rounds`` alternating timings, after ``warmup`` untimed steps."""
    net, trainer = compiled(model, ctx)
    images, labels = real_images(batch_size * steps, size)
    loader = ArrayLoader(images, labels, batch_size, shuffle=True)
    X, y = next(iter(ArrayLoader(images, labels, batch_size)))
    X, y = X.as_in_ctx(ctx), y.as_in_ctx(ctx)

    def step():
        float(train_step(net, trainer, X, y).sum())  # wait for the step, as the real loop does

    timed_steps(step, warmup)
    compute, end_to_end = [], []
    for _ in range(rounds):
        compute.append(steps * batch_size / timed_steps(step, steps))
        start = time.perf_counter()
        train_epoch(net, trainer, loader, [ctx], 0)
        end_to_end.append(steps * batch_size / (time.perf_counter() - start))
    return statistics.median(compute), statistics.median(end_to_end)


def d2l_baseline(model, size, batch_size, steps, warmup, workers, rounds=1):
    """img/s of the d2l way: imperative blocks, per-sample transforms in a Gluon DataLoader
    (the median over ``rounds`` stretches of ``steps`` batches, after ``warmup`` batches)."""
    images, labels = real_images(batch_size * (steps * rounds + warmup), None)
    dataset = gluon.data.ArrayDataset(mx.np.array(images[..., None]), mx.np.array(labels, dtype="int32"))
    dataset = dataset.transform_first(transforms.Compose([transforms.Resize(size), transforms.ToTensor()]))
    loader = gluon.data.DataLoader(dataset, batch_size, shuffle=True, num_workers=workers)
    net = get_model(model, imperative=True)
    net.initialize(mx.init.Xavier())
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    figures, seen, start = [], 0, None
    for i, (X, y) in enumerate(loader):
        timed = i - warmup  # batches since the warm-up
        if timed >= 0 and timed % steps == 0:  # a timed stretch starts
            seen, start = 0, time.perf_counter()
        with autograd.record():
            loss = loss_fn(net(X), y)
        loss.backward()
        trainer.step(X.shape[0])
        float(loss.sum())
        seen += X.shape[0]
        if timed >= 0 and (timed + 1) % steps == 0:  # ... and ends
            figures.append(seen / (time.perf_counter() - start))
    return statistics.median(figures)


def baseline_in_child(args):
    """Run ``d2l_baseline`` in a child whose MXNet loads with its default thread settings
    (or ``--baseline-threads``)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if args.baseline_threads:
        env["OMP_NUM_THREADS"] = str(args.baseline_threads)
    code = ("import mxnet, sys; from gluon_resnet import bench; "
            f"print(bench.d2l_baseline({args.model!r}, {args.size}, {args.batch_size}, {args.steps}, "
            f"{args.warmup}, {args.workers}, {args.rounds}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"the d2l baseline failed:\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def peer_script(path):
    """The PyTorch peer script to run: ``path`` (``--peer``) or, without one, ``PEER`` where it exists."""
    if path is None:
        if not os.path.isfile(PEER):
            raise UserError(f"--torch-python needs the PyTorch peer script, and there is none at {PEER}: "
                            "pass its path with --peer PATH")
        return PEER
    if not os.path.isfile(path):
        raise UserError(f"--peer {path}: no such file; give the path of the PyTorch peer script "
                        "(torch_resnet18_step.py)")
    return os.path.abspath(path)


def torch_peer(python, script, size, batch_size, steps, channels_last):
    """img/s printed by the PyTorch peer ``script`` (``torch_step_img_per_s: N``)."""
    cmd = [python, script, "--size", str(size), "--batch-size", str(batch_size),
           "--steps", str(steps)] + (["--channels-last"] if channels_last else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"the PyTorch peer failed:\n{out.stderr[-2000:]}")
    return float(out.stdout.strip().split(":")[-1])


MARK = "-- timed step --"


def verbose_step(model, size, batch_size):
    """Child side of ``by_pass``: two warm-up steps, the marker, one timed step, the marker and its
    milliseconds; oneDNN logs every primitive it runs in between."""
    net, trainer = compiled(model)
    X = mx.np.random.uniform(size=(batch_size, 1, size, size))
    y = mx.np.random.randint(0, 10, (batch_size,))
    for _ in range(2):
        train_step(net, trainer, X, y)
    mx.nd.waitall()
    print(MARK, flush=True)
    start = time.perf_counter()
    train_step(net, trainer, X, y)
    mx.nd.waitall()
    print(f"{MARK} {1000 * (time.perf_counter() - start)}", flush=True)


def figure_text(value):
    """A figure as bench prints it: two decimals, or four significant digits below 10, so that a
    0.47 ms pass keeps its precision.

    >>> figure_text(513.771), figure_text(0.47125), figure_text(12.5)
    ('513.77', '0.4713', '12.50')
    """
    return f"{value:.4g}" if abs(value) < 10 else f"{value:.2f}"


def by_pass(model, size, batch_size):
    """Milliseconds oneDNN spends in one compute-only step, by convolution pass (forward, input gradient,
    weight gradient) and for everything else it runs, from a child's ``DNNL_VERBOSE`` log; each
    convolution pass's GFLOP/s; the logged step's wall time and oneDNN's share of it."""
    code = f"from gluon_resnet import bench; bench.verbose_step({model!r}, {size}, {batch_size})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, DNNL_VERBOSE="1"))
    if out.returncode != 0 or MARK not in out.stdout:
        raise RuntimeError(f"the oneDNN-logged step failed:\n{out.stderr[-2000:]}")
    ms = dict.fromkeys(("forward_training", "backward_data", "backward_weights", "other"), 0.0)
    _, logged, wall = out.stdout.split(MARK)
    for line in logged.splitlines():
        fields = line.split(",")
        if fields[:2] != ["dnnl_verbose", "exec"]:
            continue
        kind = fields[5] if fields[3] == "convolution" else "other"
        ms[kind] += float(fields[-1])
    if not all(ms[kind] for kind in ("forward_training", "backward_data", "backward_weights")):
        raise UserError("--by-pass: oneDNN logged no convolution passes; this MXNet build does not run "
                        "its convolutions through oneDNN (a GPU or a non-MKLDNN build?)")
    convs = layer_macs(model, size, kinds=("Conv2D",))
    work = {"forward_training": sum(convs), "backward_data": sum(convs) - convs[0],
            "backward_weights": sum(convs)}
    names = {"forward_training": "conv_forward", "backward_data": "conv_input_grad",
             "backward_weights": "conv_weight_grad"}
    figures = {}
    for kind, name in names.items():
        figures[f"{name}_ms"] = ms[kind]
        figures[f"{name}_gflop_per_s"] = 2 * batch_size * work[kind] / ms[kind] / 1e6
    figures["other_onednn_ms"] = ms["other"]
    figures["logged_step_ms"] = float(wall)
    figures["onednn_share_of_step"] = sum(ms.values()) / float(wall)
    return figures


# ---------------------------------------------------------------------------- --inference

def inference_nets(model, size):
    """Two hybridized copies of ``model`` holding the same parameters (the shipped weights where there
    are some), one for batch 1 and one for batch 256, so neither re-plans its static graph per call."""
    from .onnx_export import hybrid_twin
    from .zoo import shipped

    net = get_model(model, pretrained=model in shipped())
    if model not in shipped():  # the weights do not change the speed
        mx.random.seed(0)
        net.initialize(mx.init.Xavier())
    net(mx.np.zeros((1, 1, size, size)))  # finish deferred initialisation before copying
    nets = [net, hybrid_twin(net, model)]
    for each in nets:
        hybridize_static(each)
    return nets


def inference(model, size, steps, rounds, warmup):
    """Batch-1 latency (median ms over all calls) and batch-256 throughput (median img/s over rounds)
    of the hybridized MXNet net and of onnxruntime on the same model exported to ONNX. Both run with
    the same thread count; their rounds alternate, so a busy spell on the machine hits both alike."""
    import tempfile

    from .onnx_export import export_onnx, run_session, session

    one_net, big_net = inference_nets(model, size)
    rng = np.random.default_rng(0)
    one, big = (rng.random((n, 1, size, size), dtype=np.float32) for n in (1, 256))
    with tempfile.TemporaryDirectory() as tmp:
        sess = session(export_onnx(one_net, os.path.join(tmp, "model.onnx"), (1, 1, size, size)))
    runners = {"mxnet": (lambda X: one_net(X).wait_to_read(), lambda X: big_net(X).wait_to_read(), mx.np.array),
               "onnxruntime": (lambda X: run_session(sess, X), lambda X: run_session(sess, X), lambda X: X)}
    latency, throughput = {k: [] for k in runners}, {k: [] for k in runners}
    for r in range(rounds + 1):  # round 0 warms up
        for name, (run_one, run_big, to_input) in runners.items():
            X1, X256 = to_input(one), to_input(big)
            calls = [timed_steps(lambda: run_one(X1), 1) for _ in range(10 * steps if r else warmup + 1)]
            seconds = timed_steps(lambda: run_big(X256), steps if r else warmup + 1)
            if r:
                latency[name] += calls
                throughput[name].append(steps * 256 / seconds)
    return inference_figures(latency, throughput)


def inference_figures(latency, throughput):
    """The printed figures from each runtime's batch-1 call times (seconds) and batch-256 rates (img/s):
    medians, and the ratios between MXNet and onnxruntime."""
    figures = {}
    for name in latency:
        figures[f"{name}_batch1_median_ms"] = 1000 * statistics.median(latency[name])
        figures[f"{name}_batch256_img_per_s"] = statistics.median(throughput[name])
    figures["batch1_ms_mxnet_over_onnxruntime"] = (figures["mxnet_batch1_median_ms"] /
                                                   figures["onnxruntime_batch1_median_ms"])
    figures["batch256_img_per_s_onnxruntime_over_mxnet"] = (figures["onnxruntime_batch256_img_per_s"] /
                                                             figures["mxnet_batch256_img_per_s"])
    return figures


def print_cpu(threads_for="MXNet"):
    """The lines that say which CPU the figures below them came from (``runtime.cpu_info``)."""
    from .runtime import cpu_description, cpu_info

    cpu = cpu_info()
    print(f"cpu: {cpu_description(cpu)}, the threads running {threads_for}")
    print(f"cpu_model: {cpu['model']}\ncpu_family_model: {cpu['family']}/{cpu['model_number']}\n"
          f"cpu_generation: {cpu['generation']}\ncpu_cores: {cpu['cores']}\nomp_threads: {cpu['threads']}\nonednn_isa: {cpu['isa']}")


def print_inference(args):
    """``--inference``: print the CPU, the threads and the figures of ``inference`` as ``name: value``."""
    print_cpu("MXNet and onnxruntime")
    print(f"model: {args.model} at 1x{args.size}x{args.size}")
    figures = {"load_average_1min": os.getloadavg()[0]}
    figures.update(inference(args.model, args.size, args.steps, args.rounds, args.warmup))
    figures["load_average_1min_end"] = os.getloadavg()[0]
    for name, value in figures.items():
        print(f"{name}: {figure_text(value)}")
    return 0


def build_parser():
    p = ArgumentParser(prog="python -m gluon_resnet.bench",
                       description="Measure training throughput (images/second) in one run: compute-only "
                                   "steps, the real end-to-end loop, the d2l-style baseline and, optionally, "
                                   "the PyTorch peer; print each as `name: value`.")
    p.add_argument("--model", default="resnet18_d2l", help="registry name (default: %(default)s)")
    p.add_argument("--size", type=number(int, "--size", 8, 512), default=96, help="image side (default: 96)")
    p.add_argument("--batch-size", type=number(int, "--batch-size", 1), default=128, help="(default: 128)")
    p.add_argument("--steps", type=number(int, "--steps", 1), default=4,
                   help="timed steps per round (default: 4)")
    p.add_argument("--rounds", type=number(int, "--rounds", 1), default=3,
                   help="timed rounds per figure; each figure is their median (default: 3)")
    p.add_argument("--warmup", type=number(int, "--warmup", 0), default=2,
                   help="untimed steps first, as the PyTorch peer does (default: 2)")
    p.add_argument("--workers", type=number(int, "--workers", 0), default=4,
                   help="DataLoader worker processes of the d2l baseline (d2l uses 4; default: 4)")
    p.add_argument("--no-baseline", action="store_true", help="skip the d2l-style baseline")
    p.add_argument("--baseline-threads", type=number(int, "--baseline-threads", 1), metavar="N",
                   help="run the baseline with OMP_NUM_THREADS=N instead of MXNet's default, to see how much "
                        "of the gap is the thread count")
    p.add_argument("--by-pass", action="store_true",
                   help="also log one step with DNNL_VERBOSE and print oneDNN's milliseconds and GFLOP/s "
                        "for the convolutions' forward, input-gradient and weight-gradient passes")
    p.add_argument("--inference", action="store_true",
                   help="measure inference instead: batch-1 latency (median ms over 10 x --steps calls a round) and "
                        "batch-256 throughput (--steps batches a round) of the hybridized MXNet net and of "
                        "onnxruntime on the same model exported to ONNX (shipped weights where they exist)")
    p.add_argument("--torch-python", metavar="PYTHON",
                   help="a python with torch installed: also time the PyTorch peer script (--peer)")
    p.add_argument("--peer", metavar="PATH",
                   help="the PyTorch peer script that --torch-python runs (default: "
                        "../shared/peers/torch_resnet18_step.py beside the checkout, where it exists)")
    return p


@friendly
def main(argv=None):
    args = build_parser().parse_args(argv)
    get_model(args.model)  # an unknown --model fails here, in one line, before any timing
    script = peer_script(args.peer) if args.torch_python else None  # a missing script fails before timing
    if args.inference:
        return print_inference(args)
    figures = {"load_average_1min": os.getloadavg()[0]}
    compute, end_to_end = compute_and_end_to_end(args.model, args.size, args.batch_size, args.steps,
                                                 args.warmup, mx.cpu(), args.rounds)
    figures.update(compute_step_img_per_s=compute, end_to_end_img_per_s=end_to_end,
                   end_to_end_over_compute=end_to_end / compute)
    work, peak = train_gflop_per_step(args.model, args.size, args.batch_size), matmul_gflop_per_s()
    achieved = work * compute / args.batch_size
    figures.update(train_gflop_per_step=work, compute_gflop_per_s=achieved, matmul_gflop_per_s=peak,
                   compute_share_of_matmul=achieved / peak,
                   img_per_s_at_matmul_rate=peak / work * args.batch_size)
    if args.by_pass:
        figures.update(by_pass(args.model, args.size, args.batch_size))
    if not args.no_baseline:
        baseline = baseline_in_child(args)
        figures.update(d2l_baseline_img_per_s=baseline, end_to_end_over_baseline=end_to_end / baseline)
    if args.torch_python:
        runs = [(torch_peer(args.torch_python, script, args.size, args.batch_size, args.steps, False),
                 torch_peer(args.torch_python, script, args.size, args.batch_size, args.steps, True))
                for _ in range(args.rounds)]
        nchw, last = (statistics.median(layout) for layout in zip(*runs))
        figures.update(torch_nchw_img_per_s=nchw, torch_channels_last_img_per_s=last,
                       compute_over_torch_best=compute / max(nchw, last))
    figures["load_average_1min_end"] = os.getloadavg()[0]
    print_cpu()
    for name, value in figures.items():
        print(f"{name}: {figure_text(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
