# %% [markdown]
# # 2. The lesson's ResNet-18, stage by stage
#
# Chapter 1 built one residual block. ResNet-18 stacks eight of them between a stem and a
# classifier. Here we assemble the network the way the d2l lesson does, push an image through it
# layer by layer to watch the shapes, and count what each stage costs in parameters and in
# multiply-adds (the paper's "FLOPs").
#
# The network comes from `gluon_resnet.resnet18_d2l`; the walk and the counts from
# `gluon_resnet.shapes.layer_table`.
#
# **Settings:** none; nothing is trained, so quick mode (`GLUON_RESNET_QUICK=1`) and full mode
# run the same cells. **Expected time:** under a minute in full mode on a 2-core AMD EPYC
# (Zen 4, AVX-512), 2 threads.

# %%
%matplotlib inline
import time

T0 = time.perf_counter()

import inspect

import gluon_resnet as gr  # first: it sets the thread count before MXNet loads
import pandas as pd
from gluon_resnet import diagrams, models, notebook, shapes
from matplotlib.figure import Figure

QUICK = notebook.quick()
print("settings: none (nothing is trained); quick mode:", QUICK)

# %% [markdown]
# ## Four parts
#
# 1. **Stem** (茎, the first layers, before any residual block (残差块)) - a 7x7 convolution with 64 channels and stride 2, batch norm, ReLU, then a 3x3
#    max-pool with stride 2: a 224x224 image becomes a 56x56 map before any residual block.
# 2. **Four stages** of two residual blocks each, with 64, 128, 256 and 512 channels. The first
#    stage keeps the size (the max-pool just shrank it); each later stage halves height and width
#    and doubles the channels in its first block, which therefore needs the 1x1 convolution on
#    its shortcut connection (快捷连接).
# 3. **Global average pooling** turns each of the 512 final maps into one number.
# 4. **A dense layer** maps the 512 numbers to the 10 classes.
#
# Counting weighted layers: 1 stem convolution + 4 stages x 2 blocks x 2 convolutions + 1 dense
# layer = 18. Drawn by `gluon_resnet.diagrams`, with each part's output shape for the 96x96
# Fashion-MNIST images the lesson trains on (the table further down checks these shapes against
# the real network):

# %%
diagrams.resnet18()

# %% [markdown]
# The architecture is data - one tuple of (blocks, channels) per stage:

# %%
models.D2L_STAGES

# %% [markdown]
# and one small function stacks a stage from it:

# %%
print(inspect.getsource(models.resnet_stage))

# %% [markdown]
# and `resnet18_d2l` puts the stem, the four stages and the head together (with
# `imperative=True` it builds the stages from chapter 1's `Residual` itself, otherwise from its
# compiled twin `HybridResidual`):

# %%
print(inspect.getsource(gr.resnet18_d2l))

# %% [markdown]
# ## The shape walk at 224x224
#
# `layer_table` runs one image through the network and records every top-level layer's output
# shape, its trainable parameters and its multiply-adds (convolutions and the dense layer only,
# as the paper counts).

# %%
def walk(size):
    rows = shapes.layer_table(gr.resnet18_d2l(), (1, 1, size, size))
    table = pd.DataFrame(rows)[["name", "kind", "output_shape", "params", "macs"]]
    return table.set_index("name")

walk224 = walk(224)
walk224

# %% [markdown]
# Height and width go 224 -> 112 (stem conv) -> 56 (max-pool) -> 56 -> 28 -> 14 -> 7 -> 1 (global
# pooling) while the channels go 1 -> 64 -> 128 -> 256 -> 512. The modules are named in the order
# they were added: `0`-`3` are the stem, `4`-`7` the four stages, `8` the pooling, `9` the dense
# layer.
#
# ## The same network at 96x96
#
# The lesson trains on Fashion-MNIST enlarged to 96x96 to save time. Nothing in the network is tied
# to the input size: every layer still works, and global average pooling absorbs whatever size is
# left at the end (3x3 here instead of 7x7).

# %%
walk96 = walk(96)
pd.DataFrame({"output at 224": walk224["output_shape"], "output at 96": walk96["output_shape"]})

# %% [markdown]
# ## Where the parameters and the work are
#
# Parameters do not depend on the input size; multiply-adds scale with the number of positions,
# so 96x96 costs $(96/224)^2 \approx 0.18$ of the work at 224x224.

# %%
stages = ["stem", "stage 1", "stage 2", "stage 3", "stage 4", "classifier"]
groups = [["0", "1", "2", "3"], ["4"], ["5"], ["6"], ["7"], ["8", "9"]]
summary = pd.DataFrame({
    "params": [walk224.loc[g, "params"].sum() for g in groups],
    "mult-adds at 224": [walk224.loc[g, "macs"].sum() for g in groups],
    "mult-adds at 96": [walk96.loc[g, "macs"].sum() for g in groups],
}, index=stages)
summary.loc["total"] = summary.sum()
summary

# %%
fig = Figure(figsize=(9, 3.2), layout="constrained")
left, right = fig.subplots(1, 2)
body = summary.drop("total")
left.bar(body.index, body["params"] / 1e6, color="C0")
left.set(ylabel="parameters (millions)", title="parameters per stage")
right.bar(body.index, body["mult-adds at 224"] / 1e6, color="C1")
right.set(ylabel="multiply-adds (millions)", title="multiply-adds per stage, 224x224 input")
for ax in (left, right):
    ax.set_xlabel("part of the network")
    ax.tick_params(axis="x", rotation=30)
fig

# %% [markdown]
# The two bar charts point in opposite directions. Stage 4 holds most of the parameters (its 3x3
# convolutions have 512 x 512 x 9 weights each) but runs on a 7x7 map, so its work is no larger than
# that of stage 1, which has few weights but a 56x56 map. Every stage after the first halves the
# height and the width, which quarters the positions (a factor of 1/4), and doubles both the input
# and the output channels of its convolutions (a factor of 4 on the work at each position), which is why the
# multiply-adds per stage stay nearly level - a design choice the paper takes from VGG.
#
# The single-channel stem here (Fashion-MNIST is grey) is cheaper than the paper's three-channel
# one; chapter 4 puts the family side by side with the paper's Table 1.

# %%
net = gr.resnet18_d2l()
params, macs = shapes.totals(net, shapes.layer_table(net, (1, 1, 224, 224)))
print(f"ResNet-18 (lesson, 1 input channel, 10 classes): {params:,} parameters, {macs / 1e9:.2f} G multiply-adds at 224x224")

# %% [markdown]
# ## 中文小结
#
# ResNet-18 由四部分组成：茎（stem，即开头的 7x7 卷积与最大汇聚）、四个各含两个残差块的阶段、全局平均汇聚和全连接层，
# 共 18 个带权重的层。除第一阶段外，每个阶段的第一个残差块把高和宽减半、通道数加倍，
# 因此其快捷连接需要 1x1 卷积。高宽减半使位置数变为四分之一，而通道加倍使每个位置的计算量变为四倍，
# 所以各阶段的乘加次数大致持平；参数却集中在第四阶段。网络不依赖输入尺寸，
# 全局平均汇聚吸收了末端剩下的任何尺寸，因此同一网络可在 224 或 96 像素的输入上运行。

# %%
notebook.finish(T0, QUICK)
