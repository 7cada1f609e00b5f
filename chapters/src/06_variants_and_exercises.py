# %% [markdown]
# # 6. Variants, and the lesson's exercises worked out
#
# The residual idea spread quickly. This chapter tours four relatives that `gluon_resnet`
# provides - pre-activation blocks, ResNeXt, a small residual CNN without batch norm and the
# `layer_dims` builder - and then answers the five exercises at the end of the d2l ResNet lesson,
# each with code that runs.

# %%
%matplotlib inline
import os
import time

T0 = time.perf_counter()
QUICK = os.environ.get("GLUON_RESNET_QUICK") == "1"

import gluon_resnet as gr  # first: it sets the thread count before MXNet loads
import mxnet as mx
import pandas as pd
from gluon_resnet import shapes
from gluon_resnet.data import ArrayLoader, balanced_subset
from gluon_resnet.loop import train
from matplotlib.figure import Figure
from mxnet import np, npx

SETTINGS = (dict(subset=128, epochs=1, batch_size=64, lr=0.1) if QUICK else
            dict(subset=5000, epochs=3, batch_size=128, lr=0.1))


def cost(net, input_shape):
    """(parameters, multiply-adds) of a network for one input of ``input_shape``."""
    return shapes.totals(net, shapes.layer_table(net, input_shape))

SETTINGS

# %% [markdown]
# ## Pre-activation blocks (ResNet v2)
#
# In a follow-up paper (He et al., *Identity Mappings in Deep Residual Networks*, 2016) the authors
# move batch norm and ReLU *before* each convolution and drop the ReLU after the addition. The
# shortcut then carries the input untouched from block to block - a clean identity path through
# the whole network. `BasicBlockV2` and `BottleneckV2` implement this; `resnet18_v2` and friends
# are in the registry.

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
# ResNeXt (Xie et al., 2017) keeps the bottleneck's shape but splits its 3x3 convolution into 32
# groups ("cardinality"), each 4 channels wide in the first stage, and widens the block so that
# parameters and work stay close to ResNet-50's. Grouped convolutions are cheap, so the same budget
# buys twice the channels in the 3x3 layers. (Part of the extra multiply-adds below comes from where
# the stride sits: ResNeXt puts it on the 3x3 convolution, our ResNet-50 on the first 1x1, as in the
# ResNet paper.)

# %%
table = {name: cost(gr.get_model(name, num_classes=1000, in_channels=3), (1, 3, 224, 224))
         for name in ("resnet50", "resnext50_32x4d")}
pd.DataFrame(table, index=["params", "mult-adds"]).T

# %% [markdown]
# ## A small residual CNN without batch norm
#
# Not every residual network is a ResNet. The classic MNIST tutorial net has two 5x5 convolution +
# pooling steps, each followed by a residual block of two 3x3 convolutions with biases and no batch
# norm. It trains fast on Fashion-MNIST; the run below uses the settings printed above.

# %%
data = gr.load_fashion_mnist()
train_iter = ArrayLoader(*balanced_subset(data.train_images, data.train_labels, SETTINGS["subset"]),
                         SETTINGS["batch_size"], shuffle=True)
test_iter = ArrayLoader(*balanced_subset(data.test_images, data.test_labels, SETTINGS["subset"]),
                        SETTINGS["batch_size"])
mx.random.seed(0)
small = gr.get_model("simple_residual_cnn")
history = train(small, train_iter, test_iter, SETTINGS["epochs"], SETTINGS["lr"], gr.devices()[0], log=lambda s: None)
print(f"simple_residual_cnn: {shapes.count_params(small):,} parameters, test acc {history[-1]['test_acc']:.3f} "
      f"after {SETTINGS['epochs']} epoch(s) on {len(train_iter.images)} images")

# %% [markdown]
# ## The `layer_dims` builder
#
# Architectures are data: `gr.ResNet(layer_dims=[...], block=...)` builds any member of the family
# (the form Keras tutorials use). `[2, 2, 2, 2]` with basic blocks is ResNet-18, `[3, 4, 6, 3]`
# with bottlenecks is ResNet-50, and nothing stops us from inventing new ones.

# %%
custom = gr.ResNet(layer_dims=[1, 1, 1, 1], num_classes=10, in_channels=1)
custom.initialize()
print("ResNet(layer_dims=[1, 1, 1, 1]):", shapes.weighted_depth(custom), "weighted layers,",
      f"{shapes.count_params(custom):,} parameters, output", custom(np.zeros((2, 1, 96, 96))).shape)

# %% [markdown]
# # Exercises
#
# ### 1. What are the major differences between the Inception block and the residual block? What happens if we remove some paths from the Inception block?
#
# Both run several paths in parallel. Inception runs four (1x1; 1x1-3x3; 1x1-5x5; pool-1x1) and
# **concatenates** them, so its output width is the sum of the paths' widths and every path must
# be learned. A residual block has two paths, one of which is the identity, and **adds** them: the
# width stays fixed and the do-nothing path costs nothing. Removing paths from Inception narrows
# its output and its range of receptive fields; removing all but one convolution path and adding
# an identity path - merged by addition - turns it into a residual block.

# %%
from mxnet.gluon import nn

x = np.random.uniform(size=(1, 64, 28, 28))
paths = [nn.Conv2D(c, k, padding=k // 2, in_channels=64) for c, k in ((16, 1), (32, 3), (16, 5))]
for p in paths:
    p.initialize()
concatenated = np.concatenate([p(x) for p in paths], axis=1)
residual = gr.BasicBlock(64, in_channels=64)
residual.initialize()
print("Inception-style concat of 3 paths:", concatenated.shape, "| residual sum:", residual(x).shape)

# %% [markdown]
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
# ResNet-50 - the depth grows by half while the cost barely moves:

# %%
r34 = gr.ResNet(layer_dims=[3, 4, 6, 3], block=gr.BasicBlock, num_classes=1000, in_channels=3)
r50 = gr.ResNet(layer_dims=[3, 4, 6, 3], block=gr.Bottleneck, num_classes=1000, in_channels=3)
for name, net in (("[3, 4, 6, 3] basic", r34), ("[3, 4, 6, 3] bottleneck", r50)):
    params, macs = cost(net, (1, 3, 224, 224))
    print(f"{name:<24} depth {shapes.weighted_depth(net)}, {params / 1e6:.1f}M params, {macs / 1e9:.2f}G mult-adds")

# %% [markdown]
# ### 4. In subsequent versions of ResNet, the authors changed the "convolution, batch normalization, and activation" structure to the "batch normalization, activation, and convolution" structure. Make this improvement yourself.
#
# That is the pre-activation block above (`BasicBlockV2`). Why it helps: in v1 a ReLU follows every
# addition, so the signal from an early layer reaches a late one only through a chain of ReLUs. In
# v2 the output of block $l$ is $x_l + F(x_l)$, so $x_L = x_l + \sum_{i=l}^{L-1} F(x_i)$: an exact
# identity path. We can check that path: silence each block's residual branch (zero the weights of
# its last convolution) and a whole v2 network of blocks passes its input through unchanged, negative
# values included, while the v1 stack clips them.

# %%
def stack(block_class, n=4, width=8):
    net = nn.HybridSequential()
    net.add(*[block_class(width, in_channels=width) for _ in range(n)])
    net.initialize()
    return net

def silence(net):
    for blk in net:
        last_conv = [c for c in blk.body if isinstance(c, nn.Conv2D)][-1]
        last_conv.weight.set_data(np.zeros(last_conv.weight.shape))

x = np.random.normal(size=(2, 8, 5, 5))
for name, block_class in (("v1 (conv-BN-ReLU)", gr.BasicBlock), ("v2 (BN-ReLU-conv)", gr.BasicBlockV2)):
    net = stack(block_class)
    silence(net)
    print(f"{name}: max |stack(x) - x| = {float(np.abs(net(x) - x).max()):.3f}")

# %% [markdown]
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
ax.set(xlabel="depth (weighted layers)", title="CIFAR ResNets: cost grows linearly with depth")
ax.grid(True, alpha=0.3)
ax.legend()
print(f"depth {points[-1][0]}: {points[-1][1]:.1f}M parameters, {points[-1][2] / 1e3:.2f}G multiply-adds")
fig

# %% [markdown]
# Cost grows in proportion to depth, while the paper's accuracy stops improving after 110 layers.
# Our count for the deepest net printed above can be checked against the paper's 19.4M parameters
# for its 1202-layer model.

# %%
print(f"{'quick' if QUICK else 'full'} mode: ran in {(time.perf_counter() - T0) / 60:.1f} min, "
      f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, "
      f"{os.environ.get('OMP_NUM_THREADS')} OpenMP thread(s)")
