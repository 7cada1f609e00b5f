# %% [markdown]
# # 6. Variants, and the lesson's exercises worked out
#
# The residual idea spread quickly. This chapter tours four relatives that `gluon_resnet`
# provides - pre-activation blocks, ResNeXt, a small residual CNN without batch norm and the
# `layer_dims` builder - and then answers the five exercises at the end of the d2l ResNet lesson,
# each with code that runs and a measured answer.
#
# **Settings** are printed by the next cell: every training run here uses the same class-balanced
# subset of Fashion-MNIST at 28x28 and the same tuned recipe (SGD with momentum 0.9, weight decay
# 5e-4, one-cycle learning rate, label smoothing 0.1). **Expected time:** about 2 minutes in full
# mode on a 2-core AMD EPYC (Zen 4, AVX-512), 2 threads (the committed run took 2.2); about a
# minute in quick mode.

# %%
%matplotlib inline
import time

T0 = time.perf_counter()

import inspect

import gluon_resnet as gr  # first: it sets the thread count before MXNet loads
import mxnet as mx
import pandas as pd
from gluon_resnet import blocks, diagrams, notebook, shapes
from gluon_resnet.loop import train
from gluon_resnet.settings import Settings
from matplotlib.figure import Figure
from mxnet import np
from mxnet.gluon import nn

QUICK = notebook.quick()
SETTINGS = (dict(subset=128, test_subset=100, epochs=1, batch_size=64) if QUICK else
            dict(subset=3000, test_subset=1000, epochs=3, batch_size=64))
RECIPE = dict(lr=0.05, momentum=0.9, wd=5e-4, schedule="onecycle", label_smoothing=0.1)
train_iter, _ = gr.load_data_fashion_mnist(SETTINGS["batch_size"], subset=SETTINGS["subset"])
_, test_iter = gr.load_data_fashion_mnist(250, subset=SETTINGS["test_subset"])


def fit(net):
    """Train ``net`` on the chapter's data with the chapter's recipe; the last epoch's row."""
    mx.random.seed(0)
    train_iter.set_epoch(0)
    return train(net, train_iter, test_iter, Settings(epochs=SETTINGS["epochs"], **RECIPE), gr.devices()[0],
                 log=lambda line: None)[-1]


def cost(net, input_shape):
    """(parameters, multiply-adds) of a network for one input of ``input_shape``."""
    return shapes.totals(net, shapes.layer_table(net, input_shape))

print(SETTINGS, RECIPE)

# %% [markdown]
# ## Pre-activation blocks (ResNet v2)
#
# In a follow-up paper (He et al., *Identity Mappings in Deep Residual Networks*, 2016) the authors
# move batch norm and ReLU *before* each convolution and drop the ReLU after the addition. The
# shortcut then carries the input untouched from block to block - a clean identity path through
# the whole network. `BasicBlockV2` and `BottleneckV2` implement this; `resnet18_v2` and friends
# are in the registry. The block and its shared parent, from the package:

# %%
print(inspect.getsource(blocks._PreActivation))
print(inspect.getsource(gr.BasicBlockV2))

# %%
v1, v2 = gr.BasicBlock(8, in_channels=8), gr.BasicBlockV2(8, in_channels=8)
for blk in (v1, v2):
    blk.initialize()
x = np.random.normal(size=(2, 8, 6, 6))
print("v1 output min:", float(v1(x).min()), "(a ReLU ends the block)")
print("v2 output min:", float(v2(x).min()), "(no ReLU after the sum: negative values pass)")

# %% [markdown]
# ## ResNeXt: many thin paths
#
# A convolution from $c_i$ to $c_o$ channels costs $c_i \cdot c_o \cdot k^2$ multiply-adds per
# output position: every output channel reads every input channel. A **grouped convolution**
# splits the channels into $g$ groups and lets each output group read only its own input group:
# $g$ convolutions from $c_i/g$ to $c_o/g$ channels, costing
# $g \cdot (c_i/g) \cdot (c_o/g) \cdot k^2 = c_i c_o k^2 / g$. So $g$ groups divide both the
# weights and the work of the layer by $g$. Measured on a 3x3 layer from 128 to 128 channels at
# 56x56:

# %%
rows = []
for groups in (1, 2, 4, 8, 32):
    layer = blocks.sequence(blocks.conv(128, 3, 1, 128, groups=groups))
    layer.initialize()
    params, macs = shapes.totals(layer, shapes.layer_table(layer, (1, 128, 56, 56)))
    rows.append({"groups": groups, "weights": params, "mult-adds": macs})
grouped = pd.DataFrame(rows).set_index("groups")
grouped["cost / ungrouped"] = (grouped["mult-adds"] / grouped["mult-adds"].iloc[0]).round(4)
grouped

# %% [markdown]
# The price is that no information crosses between groups. ResNeXt (Xie et al., 2017) therefore
# puts the grouped 3x3 convolution between two ordinary 1x1 convolutions, which mix all channels:
# a bottleneck block whose middle layer is split into $g$ groups (the "cardinality", 32 in
# ResNeXt-50 32x4d, each 4 channels wide in the first stage). The saving pays for a wider middle:
# 128 channels instead of ResNet-50's 64, for about the same number of parameters and about 10%
# more multiply-adds (the table below).

# %%
diagrams.resnext()

# %% [markdown]
# In `gluon_resnet` the ResNeXt block *is* the bottleneck of chapter 4 with `groups` set (the
# `conv(width, 3, s3, width, groups=self.groups)` line of `Bottleneck.make_body`); the subclass
# only fixes the defaults and, as in the ResNeXt code, puts the stride on the 3x3:

# %%
print(inspect.getsource(gr.ResNeXtBlock))

# %% [markdown]
# The shape checks the lesson makes: the block keeps the shape, or, with `strides=2` and a
# projection shortcut, halves height and width.

# %%
blk = gr.ResNeXtBlock(8, in_channels=32, groups=4, width_per_group=16)
blk.initialize()
X = np.random.uniform(size=(4, 32, 96, 96))
print("ResNeXtBlock(8, groups=4): ", X.shape, "->", blk(X).shape)
blk = gr.ResNeXtBlock(16, strides=2, in_channels=32, groups=4, width_per_group=16)
blk.initialize()
print("ResNeXtBlock(16, strides=2):", X.shape, "->", blk(X).shape)

# %% [markdown]
# The whole network against ResNet-50 at 224x224 (part of the extra multiply-adds comes from
# where the stride sits: ResNeXt puts it on the 3x3 convolution, our ResNet-50 on the first 1x1,
# as in the ResNet paper):

# %%
table = {name: cost(gr.get_model(name, num_classes=1000, in_channels=3), (1, 3, 224, 224))
         for name in ("resnet50", "resnext50_32x4d")}
pd.DataFrame(table, index=["params", "mult-adds"]).T

# %% [markdown]
# ## A small residual CNN without batch norm
#
# Not every residual network is a ResNet. The classic MNIST tutorial net has two 5x5 convolution +
# pooling steps, each followed by a residual block of two 3x3 convolutions with biases and no batch
# norm. The network and its block, from the package:

# %%
print(inspect.getsource(gr.models.simple_residual_cnn))
print(inspect.getsource(blocks.SimpleResidual))

# %% [markdown]
# Trained with the chapter's settings (printed at the top):

# %%
small = gr.get_model("simple_residual_cnn")
last = fit(small)
print(f"simple_residual_cnn: {shapes.count_params(small):,} parameters, train acc {last['train_acc']:.3f}, "
      f"test acc {last['test_acc']:.3f} after {SETTINGS['epochs']} epochs on {SETTINGS['subset']:,} images "
      f"({last['examples_per_sec']:.0f} images/s)")

# %% [markdown]
# It is fast - 6,628 images per second here (printed above), where the lesson's ResNet-18 trained
# at a few hundred per second on the same 28x28 images in chapter 3 - and it learns: 0.780 test
# accuracy after three epochs on 3,000 images, against 0.1 for guessing among ten classes.

# %% [markdown]
# ## The `layer_dims` builder
#
# Architectures are data: `gr.ResNet(layer_dims=[...], block=...)` builds any member of the family
# (the form Keras tutorials use). `[2, 2, 2, 2]` with basic blocks is ResNet-18, `[3, 4, 6, 3]`
# with bottlenecks is ResNet-50, and nothing stops us from inventing new ones. The class, from the
# package (`make_stem` and `make_stage` build the stem and one stage of `num_blocks` blocks):

# %%
print(inspect.getsource(gr.models.ResNet.__init__))
print(inspect.getsource(gr.models.make_stage))

# %% [markdown]
# A Keras tutorial's ResNet-18 is `layer_dims=[2, 2, 2, 2]` with basic blocks. Built that way for
# 1-channel input and 10 classes, does it match the lesson's `resnet18_d2l` of chapter 2? We count
# both networks' parameters by kind:

# %%
def params_by_kind(net):
    """Trainable parameters of ``net`` per kind: conv weights, conv biases, batch norm, dense."""
    net.initialize()
    net(np.zeros((1, 1, 96, 96)))
    counts = dict.fromkeys(("conv weights", "conv biases", "batch norm", "dense"), 0)
    for name, p in net.collect_params().items():
        if p.grad_req == "null":  # running averages: not learned
            continue
        kind = ("batch norm" if "batchnorm" in name else "dense" if "dense" in name else
                "conv biases" if name.endswith("bias") else "conv weights")
        counts[kind] += p.data().size
    counts["total"] = sum(counts.values())
    return counts

keras18 = gr.ResNet(layer_dims=[2, 2, 2, 2], block=gr.BasicBlock, num_classes=10, in_channels=1)
by_kind = pd.DataFrame({"resnet18_d2l": params_by_kind(gr.resnet18_d2l()),
                        "ResNet(layer_dims=[2, 2, 2, 2])": params_by_kind(keras18)})
by_kind["difference"] = by_kind.iloc[:, 0] - by_kind.iloc[:, 1]
by_kind

# %% [markdown]
# The weights of every convolution and of the dense layer agree exactly; the totals do not, for
# two reasons the table separates. The lesson's convolutions keep their bias (as d2l's do), which
# a batch norm right after makes redundant, since its shift $\beta$ absorbs any constant; the
# builder's convolutions have none, as in the paper. And the builder's three projection shortcuts
# (option B) end in a batch norm, which d2l's 1x1 convolutions lack. The last column adds up:
# 4,800 conv biases that only the lesson's net has, minus 1,792 batch-norm parameters
# ($2 \cdot (128 + 256 + 512)$, a scale and a shift per channel of the three shortcuts) that only
# the builder's has, make the 3,008 gap in the totals.
#
# Any other layout works the same way, here one block per stage:

# %%
custom = gr.ResNet(layer_dims=[1, 1, 1, 1], num_classes=10, in_channels=1)
custom.initialize()
print("ResNet(layer_dims=[1, 1, 1, 1]):", shapes.weighted_depth(custom), "weighted layers,",
      f"{shapes.count_params(custom):,} parameters, output", custom(np.zeros((2, 1, 96, 96))).shape)

# %% [markdown]
# ## Exercises
#
# ### 1. What are the major differences between the Inception block and the residual block? What happens if we remove some paths from the Inception block?
#
# Both run several paths in parallel: Inception four (1x1; 1x1-3x3; 1x1-5x5; pool-1x1), a
# residual block two (its branch and the shortcut). To measure what that means we build four
# small networks that differ only in their two middle blocks: the
# same stem (3x3 conv with stride 2 to 32 channels, 14x14), then two blocks at 64 channels, then
# global pooling and a dense layer. The blocks are a real Inception block (`blocks.Inception`,
# GoogLeNet's four paths with widths scaled from its block 3a: 16 + 32 + 8 + 8 = 64 channels),
# the same block with the 5x5 and pooling paths removed (its 3x3 path widened to keep 64
# channels), the lesson's residual block (`BasicBlock`, two full 3x3 convolutions), and a
# residual bottleneck block (1x1 to 32 channels, 3x3, 1x1 back to 64) of about the Inception
# block's cost. All four train with the chapter's data and recipe, one seed each.

# %%
print(inspect.getsource(blocks.Inception.__init__))


def small_net(make_block):
    net = nn.HybridSequential()
    net.add(blocks.conv(32, 3, 2, 1), nn.BatchNorm(in_channels=32), nn.Activation("relu"),
            make_block(32), make_block(64), nn.GlobalAvgPool2D(), nn.Dense(10, in_units=64))
    return net


CANDIDATES = {
    "Inception, 4 paths": lambda c_in: blocks.Inception(16, (24, 32), (4, 8), 8, in_channels=c_in),
    "Inception, 1x1 + 3x3 paths only": lambda c_in: blocks.Inception(16, (24, 48), (0, 0), 0, in_channels=c_in),
    "residual (BasicBlock)": lambda c_in: gr.BasicBlock(64, in_channels=c_in, shortcut="B"),
    "residual bottleneck, 64 -> 32 -> 64": lambda c_in: gr.Bottleneck(16, in_channels=c_in, width_per_group=128),
}
rows = []
for name, make_block in CANDIDATES.items():
    net = small_net(make_block)
    net.initialize()
    params, macs = cost(net, (1, 1, 28, 28))
    last = fit(net)
    rows.append({"middle blocks": name, "params": params, "mult-adds": macs,
                 "train acc": round(last["train_acc"], 3), "test acc": round(last["test_acc"], 3)})
exercise1 = pd.DataFrame(rows).set_index("middle blocks")
exercise1

# %% [markdown]
# The costs relative to the four-path Inception net, computed from the table:

# %%
(exercise1[["params", "mult-adds"]] / exercise1.loc["Inception, 4 paths", ["params", "mult-adds"]]).round(2)

# %% [markdown]
# *Answer, from the two tables above.* On cost the numbers are exact: the basic residual block
# costs several times the Inception block, the residual bottleneck somewhat more than it, and the
# Inception block without its 5x5 and pooling paths (its 3x3 path widened to keep 64 channels)
# also more (1.2 times, the ratios are printed). On accuracy the table gives one seed each, and
# chapter 5 shows how far one seed can stray: there the same network trained under two seeds can
# end several points apart in final error, or more. So the accuracy columns show that all four
# small nets learn well above chance in three short epochs (test accuracy 0.69 to 0.76, against
# 0.1 for guessing), but one seed each cannot rank the blocks; that would take several seeds per
# block and longer training.
#
# The difference in principle: Inception **concatenates** its paths, so its output width is the
# sum of the paths' widths, every path must be learned, and nothing carries the input through
# unchanged. A residual block **adds** its branch to an identity shortcut: the width stays
# fixed and the do-nothing path costs nothing. Remove all of Inception's paths but one and add an
# identity path merged by addition, and it becomes a residual block.

# ### 2. Following Table 1 in the paper, implement different variants of the network.
#
# Each row of Table 1 is one entry of the registry, and the builder makes any other. A few,
# at 224x224 RGB input and 1000 classes (the quick mode skips the slow 152-layer walk):

# %%
names = ("resnet18", "resnet34", "resnet50") if QUICK else ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
rows = {n: cost(gr.get_model(n, num_classes=1000, in_channels=3), (1, 3, 224, 224)) for n in names}
variants = pd.DataFrame(rows, index=["params", "mult-adds"]).T
variants["params"] = (variants["params"] / 1e6).round(1).astype(str) + "M"
variants["mult-adds"] = (variants["mult-adds"] / 1e9).round(2).astype(str) + "G"
variants

# %% [markdown]
# ### 3. For deeper networks, ResNet introduces a "bottleneck" architecture to reduce model complexity. Try to implement it.
#
# `gr.Bottleneck` is that block (chapter 4 measures it). Swapping it into the ResNet-34 layout gives
# ResNet-50 - the depth grows by half while the multiply-adds grow by about 5% and the parameters
# by about 17%:

# %%
r34 = gr.ResNet(layer_dims=[3, 4, 6, 3], block=gr.BasicBlock, num_classes=1000, in_channels=3)
r50 = gr.ResNet(layer_dims=[3, 4, 6, 3], block=gr.Bottleneck, num_classes=1000, in_channels=3)
for name, net in (("[3, 4, 6, 3] basic", r34), ("[3, 4, 6, 3] bottleneck", r50)):
    params, macs = cost(net, (1, 3, 224, 224))
    print(f"{name:<24} depth {shapes.weighted_depth(net)}, {params / 1e6:.1f}M params, {macs / 1e9:.2f}G mult-adds")

# %% [markdown]
# ### 4. In subsequent versions of ResNet, the authors changed the "convolution, batch normalization, and activation" structure to the "batch normalization, activation, and convolution" structure. Make this improvement yourself.
#
# That is the pre-activation block above (`BasicBlockV2`). The argument for it: in v1 a ReLU
# follows every addition, so the signal from an early layer reaches a late one only through a
# chain of ReLUs. In v2 the output of block $l$ is $x_l + F(x_l)$, so
# $x_L = x_l + \sum_{i=l}^{L-1} F(x_i)$: an exact identity path, forward and backward. The
# follow-up paper measured the gain on deep nets: on CIFAR-10, 5.46% test error with v2 against
# 5.93% with v1 at 164 layers, and 4.92% against 7.61% at 1001 layers. We try it at a depth we
# can train here: the CIFAR ResNet-32 layout with v1 blocks and with v2 blocks, same data, recipe
# and seed.

# %%
rows = []
for name, block in (("v1: conv-BN-ReLU (BasicBlock)", gr.BasicBlock),
                    ("v2: BN-ReLU-conv (BasicBlockV2)", gr.BasicBlockV2)):
    net = gr.get_model("cifar_resnet32" if not QUICK else "cifar_resnet20", block=block)
    last = fit(net)
    rows.append({"block": name, "depth": shapes.weighted_depth(net), "params": shapes.count_params(net),
                 "train acc": round(last["train_acc"], 3), "test acc": round(last["test_acc"], 3)})
pd.DataFrame(rows).set_index("block")

# %% [markdown]
# *Answer, from the table above:* v2 ends ahead by less than one point (test accuracy 0.830
# against 0.822, training accuracy 0.826 against 0.820), with one seed each. A gap that small
# cannot be told apart from the change a different seed brings (chapter 5 shows how much final
# errors move between two seeds), so this run says nothing about which ordering is better at 32
# layers. The follow-up paper's gains quoted above are at 164 and 1001 layers, depths this CPU
# cannot train in a chapter.

# ### 5. Why can't we just increase the complexity of functions without bound, even if the function classes are nested?
#
# Nesting guarantees a bigger class is *no worse in principle*, not that training finds its best
# member or that the result generalises. Each increase costs computation and memory, gains
# shrink, and with limited data a larger class can fit noise: the paper's own 1202-layer CIFAR net
# reaches similar training error to its 110-layer one but a *worse* test error (7.93% vs 6.43%),
# which the authors attribute to overfitting a small data set with a 19.4M-parameter model.
# The cost side, from our own counts for the CIFAR family:

# %%
ns = (3, 9) if QUICK else (3, 5, 7, 9, 18, 200)
points = []
for n in ns:
    net = gr.get_model(f"cifar_resnet{6 * n + 2}", in_channels=3) if 6 * n + 2 != 1202 else \
        gr.ResNet(layer_dims=[n, n, n], stem="cifar", shortcut="A", in_channels=3)
    params, macs = cost(net, (1, 3, 32, 32))
    points.append((6 * n + 2, params / 1e6, macs / 1e6))
fig = Figure(figsize=(5, 3.3), layout="constrained")
ax = fig.add_subplot()
ax.plot([p[0] for p in points], [p[1] for p in points], "o-", label="parameters (M)")
ax.plot([p[0] for p in points], [p[2] / 100 for p in points], "s--", label="multiply-adds (x100 M)")
ax.set(xlabel="depth (weighted layers)", ylabel="millions (see legend)",
       title="CIFAR ResNets: cost grows linearly with depth")
ax.grid(True, alpha=0.3)
ax.legend()
print(f"depth {points[-1][0]}: {points[-1][1]:.1f}M parameters, {points[-1][2] / 1e3:.2f}G multiply-adds")
fig

# %% [markdown]
# Cost grows in proportion to depth, while the paper's accuracy stops improving after 110 layers.
# Our count for the deepest net, 19.4M parameters for 1202 layers (printed above), is the paper's
# 19.4M.

# %% [markdown]
# ## 中文小结
#
# 残差思想有许多变体：预激活（v2）块把批量规范化和 ReLU 移到卷积之前，使快捷连接成为贯穿全网的恒等映射；
# ResNeXt 把瓶颈块中间的 3x3 卷积分成 g 组，分组卷积把该层的参数和计算量都除以 g，
# 从而用相近的代价换来更宽的中间层。练习部分用真实的 Inception 块与残差块比较了参数、乘加次数和准确率，
# 代价是精确的，而准确率每种只有一个随机种子，第 5 章显示同一网络换一个种子，最终误差可相差几个百分点甚至更多，因此不能据此给这些块排名。
# 32 层的 v1 与 v2 网络同样只训练了一个种子，v2 的测试准确率仅高不到一个百分点（0.830 对 0.822），无法据此判断优劣；后续论文中 v2 的优势在 164 层时已经出现（CIFAR-10 测试误差 5.46% 对 5.93%），在 1001 层时更大。
# `layer_dims=[2, 2, 2, 2]` 构建的 ResNet-18 与 `resnet18_d2l` 的卷积权重完全相同，参数总数相差 3008：d2l 卷积多出 4800 个偏置，而构建器的三个投影快捷连接多出 1792 个批量规范化参数。

# %%
notebook.finish(T0, QUICK)
