# %% [markdown]
# # 5. Degradation (退化): plain versus residual, for real
#
# The paper's central experiment (He et al. 2016, Section 4.2, Figs. 6 and 7): train *plain*
# networks - stacks of 3x3 convolutions with batch norm (批量规范化), no shortcuts - at several
# depths, and their residual twins, all the same way. On CIFAR-10 the paper found that the
# deeper plain nets end with **higher training error** than the shallower ones (the
# degradation problem), while the deeper residual nets end with lower error. It then looked
# inside the trained nets (Fig. 7) and found the residual layers' responses smaller than the
# plain ones': the residual functions stay close to zero, so each block stays close to the
# identity mapping (恒等映射).
#
# We repeat both at the scale two CPU cores allow: the paper's CIFAR networks (depth 6n + 2,
# three stages of 16, 32 and 64 channels, option A shortcuts) at **20, 32 and 56 layers**, plain
# and residual, **two seeds each** (12 trainings), on **all 60,000 Fashion-MNIST training images,
# shrunk to 16x16 pixels**. Training follows the paper's CIFAR recipe in shape: SGD with momentum
# 0.9, weight decay 1e-4, batch 128, learning rate 0.1 divided by 10 after half and again after
# three quarters of the steps (the paper divides at 32k and 48k of 64k steps), batch norm after
# every convolution. Two things differ, and the next paragraphs say why.
#
# **Why 16x16.** The nets are fully convolutional, so at 16x16 their three stages work on maps of
# 16, 8 and 4 pixels, half of CIFAR's 32, 16 and 8 in each stage; the layers, the shortcuts and the
# depths are the paper's. A step then costs about a fifth of a step at 28x28. Measured on the
# machine of the last cell, 2 threads, batch 128: cifar_resnet20 trains at 2,629 images/s at 16x16
# against 534 at 28x28, and cifar_resnet56 at 925 against 194. In the hour this chapter may take,
# that buys four passes over all 60,000 images (1,876 steps per net) instead of under one. The
# lesson is about depth and optimisation, and a step budget matters more to it than resolution
# does. The price: 16x16 Fashion-MNIST is a blurrier task, so our errors are not comparable with
# 28x28 results.
#
# **No augmentation, and a short warm-up.** The paper trains CIFAR with flips and 4-pixel crops;
# we train on the images as they are, so that "training error" is the error on the training
# images themselves. The budget search (`docs/ch05-budget-search.md`) tried flips and 2-pixel crops
# at 16x16 too: they raised the training error of both resnet20 and resnet56, and did not change
# which one was lower. Every net warms up linearly from lr 0 to 0.1 over its first 0.2 epoch (94
# steps): without it, a 56-layer net was still at chance after 30 steps (a 28x28 slice of the budget
# search). The paper warms
# only ResNet-110, at lr 0.01; we warm every net the same way, so twins still differ only in
# their shortcuts.
#
# **Settings** are printed by the next cell. **Expected time:** about 49 minutes in full mode
# on a 2-core AMD EPYC (Zen 4, AVX-512), 2 threads, alone (about twice that on an AVX2-only
# machine); under a minute in quick mode.

# %%
%matplotlib inline
import time

T0 = time.perf_counter()

import gluon_resnet as gr  # first: it sets the thread count before MXNet loads
import mxnet as mx
from gluon_resnet import analysis, notebook, plots, shapes
from gluon_resnet.loop import accuracy_sums, train
from gluon_resnet.settings import Settings
from matplotlib.figure import Figure
from mxnet import autograd, np

QUICK = notebook.quick()
SETTINGS = (dict(size=16, train_images=500, test_images=500, epochs=2, batch_size=64, depths=(20, 32), seeds=(0,),
                 response_images=100) if QUICK else
            dict(size=16, train_images=60000, test_images=10000, epochs=4, batch_size=128, depths=(20, 32, 56),
                 seeds=(0, 1), response_images=500))
RECIPE = dict(lr=0.1, momentum=0.9, wd=1e-4, schedule="step", warmup_epochs=0.2)
print(SETTINGS)
print(RECIPE)

# %% [markdown]
# ## Twins that differ only in the shortcut
#
# A plain net and its residual twin have the same layers. Option A shortcuts add no parameters
# (they subsample and pad with zero channels), so each pair has the same parameter count too.
# The option A shortcut, from the package (a residual block uses it wherever its stage halves the
# map and doubles the channels; the plain nets have no shortcut at all):

# %%
import inspect

from gluon_resnet import blocks

print(inspect.getsource(blocks.ZeroPadShortcut))

# %%
KINDS = ("plain", "resnet")
NAMES = [f"cifar_{kind}{depth}" for kind in KINDS for depth in SETTINGS["depths"]]
for name in NAMES:
    net = gr.get_model(name)
    net.initialize()
    net(np.zeros((1, 1, SETTINGS["size"], SETTINGS["size"])))
    print(f"{name:<15} {shapes.weighted_depth(net):>3} weighted layers, {shapes.count_params(net):>7,} parameters")

# %% [markdown]
# ## Training the twelve networks
#
# For each seed every network sees the same data in the same order and starts from weights
# drawn with the same seed. `train` measures training accuracy on the fly during each epoch
# (the paper's training-error curves are measured the same way); test error is measured after
# each epoch on the `test_images` test images (all 10,000 in full mode), resized the same way.

# %%
def fashion_mnist(batch_size, n, seed=0):
    """Train and test batches of n class-balanced images each (all 60,000 / 10,000 when n is that large),
    resized to SETTINGS["size"] pixels a side; the training order is shuffled by ``seed``."""
    return gr.load_data_fashion_mnist(batch_size, resize=SETTINGS["size"], subset=n, seed=seed)


_, test_iter = fashion_mnist(250, SETTINGS["test_images"])
ctx = gr.devices()[0]
histories, nets = {}, {}
for seed in SETTINGS["seeds"]:
    train_iter, _ = fashion_mnist(SETTINGS["batch_size"], SETTINGS["train_images"], seed)
    for name in NAMES:
        start = time.perf_counter()
        net = gr.get_model(name)
        settings = Settings(epochs=SETTINGS["epochs"], batch_size=SETTINGS["batch_size"], seed=seed, **RECIPE)
        histories[name, seed] = train(net, train_iter, test_iter, settings, ctx, log=lambda line: None)
        nets[name, seed] = net
        last = histories[name, seed][-1]
        print(f"seed {seed}  {name:<15} train error {1 - last['train_acc']:.3f}   "
              f"test error {1 - last['test_acc']:.3f}   ({(time.perf_counter() - start) / 60:.1f} min)")
STEPS_PER_EPOCH = len(train_iter)
print(f"{STEPS_PER_EPOCH} steps per epoch, {STEPS_PER_EPOCH * SETTINGS['epochs']:,} steps per net")

# %% [markdown]
# ## The paper's Fig. 6, at our scale
#
# Dashed lines are training error, solid lines test error, one colour per depth; the line is the
# mean over the seeds and the shaded band runs from the lowest to the highest seed. The x axis
# counts steps, as the paper's does; each point is the end of an epoch (training error is the
# epoch's average), and the dotted lines mark the two learning-rate drops.

# %%
def error_curves(name, key):
    return [[1 - row[key] for row in histories[name, seed]] for seed in SETTINGS["seeds"]]

steps = [STEPS_PER_EPOCH * (e + 1) for e in range(SETTINGS["epochs"])]  # each point: the end of an epoch
drops = [settings.epochs * STEPS_PER_EPOCH // 2, settings.epochs * STEPS_PER_EPOCH * 3 // 4]  # lr / 10 after these
fig = Figure(figsize=(11, 4), layout="constrained")
for ax, kind in zip(fig.subplots(1, 2, sharey=True), KINDS):
    for i, depth in enumerate(SETTINGS["depths"]):
        name = f"cifar_{kind}{depth}"
        plots.plot_band(ax, error_curves(name, "train_acc"), "--", x=steps, color=f"C{i}", label=f"{kind}-{depth} train")
        plots.plot_band(ax, error_curves(name, "test_acc"), "-", x=steps, color=f"C{i}", label=f"{kind}-{depth} test")
    for step in drops:
        ax.axvline(step, color="0.6", lw=0.8, ls=":")
    ax.set(xlabel="training steps (batches of 128; dotted: lr / 10)", ylabel="error (1 - accuracy)",
           title=f"{'plain' if kind == 'plain' else 'residual'} networks (dashed: training, solid: test)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
fig

# %% [markdown]
# ## The final numbers, and the verdict they give
#
# The table lists each net's final training and test error per seed. Below it, the check the
# paper's argument rests on: does the final **training** error rise with depth (degradation) or
# fall? Training error is the quantity to watch: a deeper net can represent everything a
# shallower one can, so if it ends with higher training error the fault lies with optimisation,
# not with capacity or overfitting.

# %%
def final(name, key):
    return [1 - histories[name, seed][-1][key] for seed in SETTINGS["seeds"]]

print(f"{'net':<15} " + "  ".join(f"seed {s}: train  test" for s in SETTINGS["seeds"]))
for name in NAMES:
    pairs = zip(final(name, "train_acc"), final(name, "test_acc"))
    print(f"{name:<15} " + "  ".join(f"       {tr:.3f} {te:.3f}" for tr, te in pairs))


def trend(errors):
    """'rises', 'falls' or 'is not monotone', for errors listed from the shallowest net to the deepest."""
    steps = [b - a for a, b in zip(errors, errors[1:])]
    return "rises" if all(d > 0 for d in steps) else "falls" if all(d < 0 for d in steps) else "is not monotone"


verdicts = {}
for kind in KINDS:
    by_depth = [final(f"cifar_{kind}{d}", "train_acc") for d in SETTINGS["depths"]]  # [depth][seed]
    print()
    for i, seed in enumerate(SETTINGS["seeds"]):
        errors = [per_seed[i] for per_seed in by_depth]
        verdicts[kind, seed] = trend(errors)
        print(f"{kind:<6} seed {seed}: final training error " +
              ", ".join(f"{d} layers {e:.3f}" for d, e in zip(SETTINGS["depths"], errors)) +
              f": it {verdicts[kind, seed]} with depth")
    means = [sum(per_seed) / len(per_seed) for per_seed in by_depth]
    print(f"{kind:<6} mean over seeds: " + ", ".join(f"{d} layers {m:.3f}" for d, m in zip(SETTINGS["depths"], means)) +
          f": it {trend(means)} with depth")
plain_rises = all(verdicts["plain", s] == "rises" for s in SETTINGS["seeds"])
resnet_falls = all(verdicts["resnet", s] == "falls" for s in SETTINGS["seeds"])
print(f"\nthe paper's pattern, seed by seed: plain training error rises with depth: {'yes' if plain_rises else 'no'}; "
      f"residual training error falls with depth: {'yes' if resnet_falls else 'no'}")

# %% [markdown]
# ## Batch-norm statistics: scoring with running averages and with batch statistics
#
# At test time a batch norm (批量规范化) normalises with the *running averages* it collected
# during training (prediction mode); during training it uses each batch's own mean and variance
# (training mode). When weights are still changing fast the running averages lag behind, and the
# test error in prediction mode can be worse than the same weights scored in training mode (in
# Chinese the running averages are 移动平均, the batch statistics 小批量统计量). We
# measure both on the test subset (batches of 250, each normalised by its own statistics in
# training mode; no weights change).

# %%
def test_error(net, training):
    with (autograd.train_mode() if training else autograd.predict_mode()):
        correct, seen = accuracy_sums(net, test_iter, ctx)
    return 1 - correct / seen

print(f"{'net':<15} {'seed':>4}  test error: running averages  batch statistics")
gaps = []
for name in NAMES:
    for seed in SETTINGS["seeds"]:
        running, batch = test_error(nets[name, seed], False), test_error(nets[name, seed], True)
        gaps.append(abs(running - batch))
        print(f"{name:<15} {seed:>4}  {running:>27.3f}  {batch:>16.3f}")
print(f"largest gap between the two scores, over all nets and seeds: {max(gaps):.3f}")

# %% [markdown]
# ## The paper's Fig. 7: how strongly does each 3x3 layer respond?
#
# For every 3x3 layer we take its output after batch norm and before the ReLU or the sum, on
# test images, and measure its standard deviation (`gluon_resnet.analysis.layer_response_std`,
# per channel, averaged over channels; prediction mode). In a residual net that output is the
# residual function's contribution to the block. The package's code for it:

# %%
print(inspect.getsource(analysis.layer_response_std))

# %% [markdown]
# **The paper's observation** (its Fig. 7, CIFAR-10, nets trained for 64,000 steps): plotted by
# layer index and sorted by size, the ResNets' responses lie generally *below* those of their
# plain twins, and the deeper the ResNet, the smaller its responses (ResNet-110's below
# ResNet-56's below ResNet-20's). The authors read this as support for their motivation: the
# residual functions are generally closer to zero than non-residual ones, and with more layers
# each layer of a ResNet modifies the signal less. **Ours**, on the nets trained above, with the
# same two panels (y axis logarithmic, labelled at the printed values):

# %%
_, response_iter = fashion_mnist(250, SETTINGS["response_images"])
batches = [X.as_in_ctx(ctx) for X, _ in response_iter]
responses = {}
for name in NAMES:
    per_seed = [analysis.layer_response_std(nets[name, seed], batches) for seed in SETTINGS["seeds"]]
    responses[name] = [sum(values) / len(values) for values in zip(*per_seed)]  # mean over seeds

fig = Figure(figsize=(11, 4), layout="constrained")
by_index, by_size = fig.subplots(1, 2)
for name in NAMES:
    kind, depth = ("plain", name[11:]) if "plain" in name else ("resnet", name[12:])
    style = dict(ls="--" if kind == "plain" else "-", color=f"C{SETTINGS['depths'].index(int(depth))}",
                 label=f"{kind}-{depth}", marker=".", ms=3)
    by_index.plot(range(1, len(responses[name]) + 1), responses[name], **style)
    by_size.plot(range(1, len(responses[name]) + 1), sorted(responses[name], reverse=True), **style)
by_index.set(xlabel="layer index (3x3 layers in forward order)", ylabel="std of the BN output",
             title="by layer index")
by_size.set(xlabel="layer rank (sorted by std, largest first)", ylabel="std of the BN output",
            title="sorted by size")
for ax in (by_index, by_size):
    plots.log_axis_ticks(ax, [v for values in responses.values() for v in values])
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
fig

# %% [markdown]
# The paper's two observations, checked on these numbers: (1) each residual net responds less
# than its plain twin, overall and layer by layer; (2) the deeper the residual net, the smaller
# its responses. Then two checks of our own: (3) inside each residual block, does the second 3x3
# layer (whose output is the residual added to the shortcut) respond less than the first, stage
# by stage? (4) A batch norm's output, scored with running averages that match the data, has the
# standard deviation of its scale $|\gamma|$; do the responses simply follow $|\gamma|$?

# %%
for depth in SETTINGS["depths"]:
    plain, res = (sum(responses[f"cifar_{k}{depth}"]) / len(responses[f"cifar_{k}{depth}"]) for k in KINDS)
    print(f"{depth} layers: mean response std plain {plain:.3f}, residual {res:.3f} -> "
          f"residual {'smaller' if res < plain else 'NOT smaller'}")
means = [sum(responses[f"cifar_resnet{d}"]) / len(responses[f"cifar_resnet{d}"]) for d in SETTINGS["depths"]]
print("residual nets, mean response std by depth: " +
      ", ".join(f"{d}: {m:.3f}" for d, m in zip(SETTINGS["depths"], means)) +
      (" -> smaller with depth" if all(b < a for a, b in zip(means, means[1:])) else " -> not monotone"))

print("\n(1, layer by layer) 3x3 layers where the residual net responds less than its plain twin:")
for depth in SETTINGS["depths"]:
    plain, res = responses[f"cifar_plain{depth}"], responses[f"cifar_resnet{depth}"]
    less = [i + 1 for i, (p, r) in enumerate(zip(plain, res)) if r < p]
    print(f"  {depth} layers: {len(less)} of {len(res)}; layer indices {less}")

print("\n(3) residual blocks whose second 3x3 layer responds less than the first, per stage:")
for depth in SETTINGS["depths"]:
    res, n = responses[f"cifar_resnet{depth}"], (depth - 2) // 6  # layer 0 is the stem, then 2 per block
    counts = [sum(res[2 + 2 * b] < res[1 + 2 * b] for b in range(stage * n, (stage + 1) * n)) for stage in range(3)]
    print(f"  {depth} layers: " + ", ".join(f"stage {k + 1} {c} of {n}" for k, c in enumerate(counts)))


print("\n(4) each 3x3 layer's response std divided by its batch norm's mean |gamma| (means over seeds):")
for name in NAMES:
    per_seed = [[float(np.abs(bn.gamma.data()).mean()) for bn in analysis.conv_bn_pairs(nets[name, seed])]
                for seed in SETTINGS["seeds"]]
    gammas = [sum(values) / len(values) for values in zip(*per_seed)]
    ratios = [r / g for r, g in zip(responses[name], gammas)]
    follows = all(0.8 <= q <= 1.25 for q in ratios)
    print(f"  {name:<15} mean |gamma| {sum(gammas) / len(gammas):.3f}, mean response {sum(responses[name]) / len(gammas):.3f}, "
          f"response / |gamma| from {min(ratios):.2f} to {max(ratios):.2f} -> "
          f"{'follows |gamma| (every layer within 0.8-1.25)' if follows else 'does not follow |gamma|'}")

# %% [markdown]
# ## What the runs show, beside the paper
#
# *(Every statement here is read off the printed lines above, except the paragraph on longer
# budgets, which is read off the budget search's records; the settings are those printed at the
# top: all 60,000 images at 16x16, no augmentation, 4 epochs = 1,876 steps per net, two seeds.)*
#
# **Plain nets: deeper is worse - the degradation problem, reproduced.** The verdict cell prints
# "rises with depth" for the plain nets' final training error under both seeds (seed 0: 0.091,
# 0.120, 0.324 at 20, 32, 56 layers; seed 1: 0.092, 0.120, 0.337). The 56-layer plain net could
# represent everything the 20-layer one does, yet it ends with more than three times its training
# error, so the fault lies with optimisation; its test error is as high as its training error
# (0.323 against 0.324 under seed 0): it is not overfitting, it is not fitting. The paper's Fig. 6
# (left) shows the same ordering on CIFAR-10 (plain-56 above plain-20 in training error
# throughout), and its Table 2 the same on ImageNet (top-1 error, 10-crop: plain-18 27.94%,
# plain-34 28.54%).
#
# **Residual nets: the degradation is gone, but deeper is not yet better.** At every depth and
# under both seeds the residual net ends at or below its plain twin in training error, and at 56
# layers the gap is largest (0.069 against 0.324 under seed 0, 0.118 against 0.337 under seed 1).
# Under seed 0 the three residual nets end level: 0.070, 0.070 and 0.069. The verdict cell calls
# that "falls", but the steps are a thousandth or less, well inside the spread between seeds, so we
# do not read it as depth helping. Under seed 1 the 56-layer residual net ends at 0.118, well above
# 0.070 and 0.072, and the verdict is "rises"; its test error (0.130) is just as high, so it is
# trained worse, not overfit. The mean over seeds therefore rises too (0.070, 0.071, 0.093). In
# the paper's Fig. 6 (middle) the residual training error *falls* with depth (ResNet-56 below
# ResNet-20), and so does its test error (Table 6, CIFAR-10: ResNet-20 8.75%, ResNet-32 7.51%,
# ResNet-56 6.97%, ResNet-110 6.43%; Table 2 on ImageNet: ResNet-18 27.88%, ResNet-34 25.03%). So
# this run reproduces half of the paper's central result: shortcuts remove the degradation, and a
# 56-layer residual net can train as well as a 20-layer one (seed 0), but at 1,876 steps it does
# not train *better*, and it does not do so reliably (seed 1). The paper trains for 64,000 steps on
# 50,000 augmented images.
#
# **Five times longer, the deeper residual net trains better.** The budget search
# (`docs/ch05-budget-search.md`, with its commands, its records and a plot) trained resnet20 against
# resnet56 with this chapter's recipe for longer. At 6 epochs (2,814 steps) the 56-layer net was
# still behind (training error 0.057 against 0.056, seed 0); at 10 epochs (4,690 steps) it was a
# coin toss (seed 0: 0.0316 against 0.0325; seed 1: 0.0338 against 0.0325). At **20 epochs (9,380
# steps)** it ends below the 20-layer net under **both seeds**: training error 0.0012 against 0.0029
# (seed 0) and 0.0016 against 0.0026 (seed 1). Their training loss per epoch, from those records:
#
# | epoch | 1 | 5 | 7 | 8 | 10 | 11 (lr 0.01) | 15 | 16 (lr 0.001) | 20 |
# |:--|--:|--:|--:|--:|--:|--:|--:|--:|--:|
# | resnet20, seed 0 | 0.5391 | 0.2054 | 0.1751 | 0.1662 | 0.1470 | 0.0941 | 0.0290 | 0.0196 | 0.0159 |
# | resnet56, seed 0 | 0.6062 | 0.2082 | 0.1741 | 0.1632 | 0.1401 | 0.0841 | 0.0171 | 0.0107 | 0.0065 |
# | resnet20, seed 1 | 0.5290 | 0.2072 | 0.1793 | 0.1656 | 0.1477 | 0.0930 | 0.0274 | 0.0181 | 0.0145 |
# | resnet56, seed 1 | 0.6017 | 0.2110 | 0.1807 | 0.1641 | 0.1415 | 0.0835 | 0.0184 | 0.0110 | 0.0073 |
#
# The deeper net starts slower, catches up while the lr is still 0.1 (epoch 7 under seed 0, epoch 8
# under seed 1), and pulls away after each lr drop: at the end its loss is 41 % (seed 0) and 50 %
# (seed 1) of the shallower net's. That is the paper's Fig. 6 (middle) in its shape, ResNet-56
# below ResNet-20, at 9,380 steps against the paper's 64,000. Two things it is not. It is not a
# test-error gain: both nets end between 8.1 % and 8.3 % test error (0.0830 against 0.0833, and
# 0.0815 against 0.0808), because without augmentation 20 epochs overfit the training images
# (training error 0.1-0.3 %), whereas the paper's Table 6 gains come with flips and crops. And it is not this chapter's run: twelve nets for
# 20 epochs would take about four hours on the machine below, four times the hour a chapter may
# take, so the chapter keeps 4 epochs, where residual nets remove the degradation but do not yet
# gain from depth.
#
# **Batch-norm running averages are not the story.** Scored with the running averages (移动平均)
# and with each test batch's own statistics, the same weights give test errors whose largest gap
# over all nets and seeds is 0.010 (printed under the table, for plain-56); it is small beside the
# differences between depths (plain test error 0.100 at 20 layers against 0.323 at 56 under seed
# 0), and the deep plain nets' high test error comes with an equally high training error, not from
# lagging statistics.
#
# **Fig. 7: the paper's first observation holds, the second does not.** Read the checks printed
# under the figure. (1) On average each residual net responds less than its plain twin: mean
# response std 0.885 against 0.920 at 20 layers, 0.895 against 0.915 at 32, 0.907 against 0.939 at
# 56. Layer by layer the residual net is the quieter one in 17 of 19 layers at 20 layers, 23 of 31
# at 32 and 40 of 55 at 56. (2) The residual responses do not shrink with depth: their means are
# 0.885, 0.895 and 0.907, slightly *growing*, the opposite of the paper's order (ResNet-110 below
# ResNet-56 below ResNet-20). (3) Inside each residual block the second 3x3 layer (whose output is
# the residual added to the shortcut) responds less than the first in every block of the 20- and
# 32-layer nets and of the 56-layer net's first stage, and in 7 of 9 blocks of its second and third
# stages. (4) The last lines test whether the responses simply follow the batch norms' scales
# $|\gamma|$, which start at 1: with running averages that match the test images, a batch norm's
# output has the standard deviation $|\gamma|$. All six nets print "follows |gamma|" (every
# layer's ratio from 0.97 to 1.07), so Fig. 7 here shows where training has moved $\gamma$ (to a
# mean of 0.88-0.94), not a separate property of the convolutions. The paper's responses come
# from nets trained 34 times longer; whether ours would shrink with depth after that much
# training is not measured here.
#
# ## 中文小结
#
# 本章在两颗 CPU 核心可承受的规模上重做了论文的核心实验：20、32、56 层的普通网络（无快捷连接）
# 与残差网络各用两个随机种子训练，数据为全部 60000 张 Fashion-MNIST 训练图像，缩小到 16x16
# （三个阶段的特征图为 16、8、4，正好是 CIFAR 的一半；每步的计算约为 28x28 时的五分之一）。
# 训练方法在形式上仿照论文的 CIFAR 部分（动量 0.9、权重衰减 1e-4、批量 128、学习率 0.1，在 50% 和 75% 的步数处各除以 10），
# 不同之处：不做数据增强；所有网络用 0.2 轮（94 步）线性预热；只训练 4 轮 = 1876 步（论文为 64000 步）。
# 结果：普通网络的最终训练误差在两个种子下都随深度上升（种子 0：0.091、0.120、0.324；种子 1：0.092、0.120、0.337），
# 这就是退化：更深的网络能表示较浅网络的一切，训练误差反而更高，问题出在优化而非容量。
# 残差网络消除了退化：种子 0 下三个深度的训练误差几乎相同（0.070、0.070、0.069，差别远小于种子间的波动，不能算“更深更好”）；
# 种子 1 下 56 层残差网络为 0.118，高于 20 层的 0.070。因此本章只重现了论文结论的一半：
# 快捷连接去掉了退化，但在这个预算下更深的残差网络还没有更低的训练误差（论文表 6：ResNet-20 8.75%、ResNet-32 7.51%、ResNet-56 6.97%）。
# 预算搜索（docs/ch05-budget-search.md）用同样的方法训练更久：6 轮时 56 层仍略高（0.057 对 0.056），10 轮时两个种子结论相反；
# 训练 20 轮（9380 步）时，两个种子下 56 层残差网络的最终训练误差都低于 20 层（0.0012 对 0.0029，0.0016 对 0.0026），
# 这才是论文图 6（中）的形状。但测试误差没有随之降低（都在 8.1%-8.3% 之间），因为不做数据增强时 20 轮已经过拟合；
# 12 个网络各训练 20 轮约需 4 小时，超出本章一小时的预算，所以本章仍只训练 4 轮。
# 用移动平均与用小批量统计量评分，测试误差最多相差 0.010，因此批量规范化的滞后不是原因。
# 论文图 7 的第一个观察成立（残差网络各层的响应平均小于普通网络），第二个不成立（响应没有随深度减小：0.885、0.895、0.907）；
# 而且各层响应几乎等于其批量规范化的缩放参数 |γ|。

# %%
notebook.finish(T0, QUICK)
