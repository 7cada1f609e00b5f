# %% [markdown]
# # 5. Degradation: plain versus residual, for real
#
# The paper's central experiment (Section 4.2, Fig. 6): train "plain" networks - the same stacks
# of 3x3 convolutions and batch norm, but without shortcuts - at two depths, and their residual
# twins, all the same way. The paper found the deeper plain net has **higher training error**
# than the shallower one (degradation), while the deeper residual net has lower error than the
# shallower one.
#
# We repeat it at a scale a CPU can afford: the CIFAR-style 20- and 56-layer networks from
# `gluon_resnet` (`cifar_plain20`, `cifar_resnet20`, `cifar_plain56`, `cifar_resnet56`; option A
# shortcuts, as in the paper), on a class-balanced subset of Fashion-MNIST zero-padded to 32x32,
# for a few epochs. Everything else - data order, initialisation, learning rate - is identical
# for the four networks.

# %%
%matplotlib inline
import os
import time

T0 = time.perf_counter()
QUICK = os.environ.get("GLUON_RESNET_QUICK") == "1"

import gluon_resnet as gr  # first: it sets the thread count before MXNet loads
import mxnet as mx
from gluon_resnet import cifar, plots, shapes
from gluon_resnet.loop import train
from matplotlib.figure import Figure
from mxnet import np

SETTINGS = (dict(subset=64, test_subset=64, epochs=1, batch_size=32, lr=0.1, depths=(20, 32)) if QUICK else
            dict(subset=2000, test_subset=500, epochs=5, batch_size=64, lr=0.1, depths=(20, 56)))
SETTINGS

# %% [markdown]
# ## Twins that differ only in the shortcut
#
# A plain net and its residual twin have the same layers; option A shortcuts add no parameters
# (they subsample and pad with zero channels), so the pairs even have identical parameter counts.

# %%
NAMES = [f"cifar_{kind}{depth}" for depth in SETTINGS["depths"] for kind in ("plain", "resnet")]
for name in NAMES:
    net = gr.get_model(name, in_channels=1)
    net.initialize()
    net(np.zeros((1, 1, 32, 32)))
    print(f"{name:<16} {shapes.weighted_depth(net):>3} weighted layers, {shapes.count_params(net):>9,} parameters")

# %% [markdown]
# ## Training the four networks
#
# Same data, same batch order (the loader is rewound before each run), same seed for the initial
# weights, plain SGD with the same learning rate. `train` measures training accuracy on the fly
# during each epoch, as the paper's training-error curves do; test error is measured on a separate,
# smaller class-balanced set of test images after each epoch (`test_subset`).

# %%
train_iter, _ = cifar.load_data_padded_fashion_mnist(SETTINGS["batch_size"], subset=SETTINGS["subset"])
_, test_iter = cifar.load_data_padded_fashion_mnist(SETTINGS["batch_size"], subset=SETTINGS["test_subset"])
ctx = gr.devices()[0]
histories = {}
for name in NAMES:
    mx.random.seed(0)
    train_iter.set_epoch(0)
    start = time.perf_counter()
    histories[name] = train(gr.get_model(name, in_channels=1), train_iter, test_iter,
                            SETTINGS["epochs"], SETTINGS["lr"], ctx, log=lambda line: None)
    last = histories[name][-1]
    print(f"{name:<16} train error {1 - last['train_acc']:.3f}, test error {1 - last['test_acc']:.3f} "
          f"({(time.perf_counter() - start) / 60:.1f} min)")

# %% [markdown]
# ## The curves
#
# As in the paper's Fig. 6: dashed lines are training error, solid lines test error; the left
# panel holds the plain nets, the right one the residual nets.

# %%
fig = Figure(figsize=(10, 3.8), layout="constrained")
for ax, kind in zip(fig.subplots(1, 2, sharey=True), ("plain", "resnet")):
    series, styles = {}, {}
    for i, depth in enumerate(SETTINGS["depths"]):
        rows = histories[f"cifar_{kind}{depth}"]
        series[f"{kind}-{depth} train"] = [1 - r["train_acc"] for r in rows]
        series[f"{kind}-{depth} test"] = [1 - r["test_acc"] for r in rows]
        styles[f"{kind}-{depth} train"], styles[f"{kind}-{depth} test"] = f"C{i}--", f"C{i}-"
    plots.plot_series(series, "epoch", "error (1 - accuracy)", ax=ax, styles=styles,
                      title=f"{'plain' if kind == 'plain' else 'residual'} networks")
fig

# %% [markdown]
# ## What the runs show
#
# (The numbers quoted below are the ones printed above by the committed full-mode run.)

# %%
shallow, deep = SETTINGS["depths"]
for kind in ("plain", "resnet"):
    a, b = (1 - histories[f"cifar_{kind}{d}"][-1]["train_acc"] for d in (shallow, deep))
    verdict = "deeper is WORSE" if b > a else "deeper is better or equal"
    print(f"{kind:<6}: final training error {shallow} layers {a:.3f}, {deep} layers {b:.3f} -> {verdict}")

# %% [markdown]
# Training error is the quantity to watch: a deeper net could *represent* everything the
# shallower one does, so if it ends up with higher training error the fault lies with
# optimisation, not capacity or overfitting.
#
# In the committed run (2,000 images, 5 epochs of 32 steps) the plain nets degrade: the 56-layer
# one ends with a training error of about 0.38, nearly twice the 0.20 of the 20-layer one trained
# on the same data, from the same seed, with the same learning rate. Its test error is worse
# still: it jumps around and ends near chance, a sign that its batch-norm running averages cannot
# keep up with weights that are still lurching. Give the same 56 layers identity shortcuts and the
# picture changes: training error about 0.25, and a test error that ends at about 0.25, level with
# the residual 20-layer net. The shortcuts close more than half of the training-error gap between 20 and 56
# layers - but not all of it: on this short schedule the residual 56-layer net still trails the
# residual 20-layer one (about 0.18). In the paper it overtakes it only after thousands of
# iterations, which we cannot afford here; so this run shows the cure of the *optimisation*
# problem, not yet the gain from depth. (Test error can sit below the training error of the same
# epoch because training error is averaged over the epoch while the weights keep improving, and
# test error is measured at its end.)
#
# Caveats of the small scale: a few epochs on a subset, no momentum or learning-rate schedule,
# one seed. The paper trains for 64k iterations and its gaps are clearer; short runs like ours
# mostly show the *early* phase, where deep plain nets are slow to get going. Re-running with more
# epochs or a larger subset (edit `SETTINGS`) sharpens the picture at the cost of CPU time.

# %%
print(f"{'quick' if QUICK else 'full'} mode: ran in {(time.perf_counter() - T0) / 60:.1f} min, "
      f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, "
      f"{os.environ.get('OMP_NUM_THREADS')} OpenMP thread(s)")
