# %% [markdown]
# # 4. Going deeper: the bottleneck block and the paper's Table 1
#
# ResNet-18 and 34 are built from the basic block of chapter 1. For 50 layers and more the paper
# switches to a **bottleneck** block (瓶颈块), so that depth does not multiply the cost. This
# chapter builds the whole family from `gluon_resnet`, counts parameters and multiply-adds, and
# sets our numbers beside the paper's Table 1. It ends with the three shortcut options A, B and C.
#
# **Settings:** nothing is trained; full mode walks all five depths (18 to 152 layers), quick
# mode (`GLUON_RESNET_QUICK=1`) only the first three. **Expected time:** under a minute in full
# mode on a 2-core AMD EPYC (Zen 4, AVX-512), 2 threads.

# %%
%matplotlib inline
import time

T0 = time.perf_counter()

import inspect

import gluon_resnet as gr  # first: it sets the thread count before MXNet loads
import pandas as pd
from gluon_resnet import diagrams, notebook, shapes
from matplotlib.figure import Figure
from mxnet import np

QUICK = notebook.quick()
# Quick mode skips the two largest networks (their walk is the slow part); full mode has all five.
DEPTHS = (18, 34, 50) if QUICK else (18, 34, 50, 101, 152)
print("depths walked:", DEPTHS)

# %% [markdown]
# ## The bottleneck block
#
# A basic block applies two 3x3 convolutions at full width. A bottleneck block first *reduces* the
# channels with a 1x1 convolution (256 -> 64 in the first stage), applies the 3x3 convolution at the
# reduced width, then *expands* back with another 1x1 (64 -> 256). The 3x3 layer, where most of the
# work is, thus runs on a quarter of the channels. The block's output has `4 * channels` channels
# (`Bottleneck.expansion`). The class, from the package (its shortcut, sum and final ReLU live
# in the shared parent `_PostActivation`, also printed):

# %%
from gluon_resnet import blocks

print(inspect.getsource(blocks._PostActivation))
print(inspect.getsource(gr.Bottleneck))

# %% [markdown]
# The paper's Fig. 5 sets the two blocks side by side at about the same cost: a basic block on a
# 64-channel input, and a bottleneck on a 256-channel input that squeezes to 64 for its 3x3 layer.

# %%
diagrams.fig5()

# %%
def block_cost(block, width, size=56):
    """Parameters and multiply-adds of one block on a (1, width, size, size) input."""
    block.initialize()
    rows = shapes.layer_table(block, (1, width, size, size))
    return shapes.totals(block, rows)

costs = pd.DataFrame([block_cost(gr.BasicBlock(64, in_channels=64), 64),
                      block_cost(gr.Bottleneck(64, in_channels=256), 256),
                      block_cost(gr.BasicBlock(256, in_channels=256), 256)],
                     columns=["params", "mult-adds at 56x56"],
                     index=["basic block, 64 channels (Fig. 5 left)", "bottleneck, 256 -> 64 -> 256 (Fig. 5 right)",
                            "basic block at the full 256 channels"])
costs

# %%
blk = gr.Bottleneck(128, strides=2, in_channels=256)
blk.initialize()
print("bottleneck(128, strides=2) on (2, 256, 56, 56) ->", blk(np.ones((2, 256, 56, 56))).shape)

# %% [markdown]
# The first two rows are the paper's comparison: the bottleneck costs about what the 64-channel
# basic block costs (70,400 against 73,984 parameters, batch norms included; 218 against 231
# million multiply-adds at 56x56), yet it reads and writes 256 channels and is one layer deeper.
# The third row shows what the same 256-channel width would cost with basic blocks: about 17
# times the bottleneck. That trade is
# what makes ResNet-50, 101 and 152 affordable: ResNet-50 replaces each basic block of ResNet-34
# by a bottleneck block and costs only slightly more.
#
# ## Table 1, ours beside the paper's
#
# The paper's Table 1 lists, for each depth, the blocks per stage and the cost in FLOPs (it counts
# multiply-adds). We build each network for 224x224 RGB input and 1000 classes, as in the paper,
# and walk it once.

# %%
PAPER = {18: ("[2, 2, 2, 2] basic", 1.8), 34: ("[3, 4, 6, 3] basic", 3.6),
         50: ("[3, 4, 6, 3] bottleneck", 3.8), 101: ("[3, 4, 23, 3] bottleneck", 7.6),
         152: ("[3, 8, 36, 3] bottleneck", 11.3)}
rows = []
for depth in DEPTHS:
    net = gr.get_model(f"resnet{depth}", num_classes=1000, in_channels=3)
    params, macs = shapes.totals(net, shapes.layer_table(net, (1, 3, 224, 224)))
    blocks, paper_gflops = PAPER[depth]
    rows.append({"network": f"ResNet-{depth}", "blocks per stage": blocks,
                 "weighted layers": shapes.weighted_depth(net), "params (M)": round(params / 1e6, 1),
                 "our G mult-adds": round(macs / 1e9, 2), "paper's G FLOPs": paper_gflops})
table1 = pd.DataFrame(rows).set_index("network")
table1

# %% [markdown]
# Our multiply-add counts land within 0.1 G of Table 1 at every depth. The small excess (3.66
# against 3.6 for ResNet-34, 3.86 against 3.8 for ResNet-50) has no certain explanation: the paper
# does not spell out its convention. Leaving out the three shortcut projections (0.02 G) would
# bring ResNet-34 to 3.6, but no such omission explains ResNet-50, so it may simply be rounded
# down. We count every convolution and the dense layer, nothing else. The paper's table lists no
# parameter counts; ours are the usual ones for these networks (11.7M for ResNet-18, 25.6M for
# ResNet-50).
#
# Every network has the same skeleton, visible in the output sizes of Table 1: a stem to 56x56,
# then stages at 56, 28, 14 and 7. Only the number of blocks per stage and the block type change:

# %%
net = gr.get_model("resnet50", num_classes=1000, in_channels=3)
walk = pd.DataFrame(shapes.layer_table(net, (1, 3, 224, 224)))
walk[["name", "kind", "output_shape", "params"]].set_index("name")

# %%
fig = Figure(figsize=(5, 3.4), layout="constrained")
ax = fig.add_subplot()
ax.plot(table1["weighted layers"], table1["our G mult-adds"], "o-", label="ours (multiply-adds)")
ax.plot([d for d in DEPTHS], [PAPER[d][1] for d in DEPTHS], "x--", ms=9, label="paper's Table 1")
ax.set(xlabel="depth (weighted layers)", ylabel="G multiply-adds per 224x224 image",
       title="cost of the ResNet family")
ax.grid(True, alpha=0.3)
ax.legend()
fig

# %% [markdown]
# ## Shortcut options A, B and C
#
# Where a block changes the shape (the first block of stages 2-4), the identity cannot be added
# directly. The paper compares three fixes (Section 3.3 and Table 3):
#
# - **A**: subsample and append zero channels - no parameters at all;
# - **B**: a 1x1 projection (with batch norm) only where the shape changes, identity elsewhere;
# - **C**: a projection on every block.
#
# Option A needs no layer with weights: a 1x1 max-pool with a stride keeps every other pixel, and
# `np.pad` appends the missing channels as zeros. The package's shortcut, which the CIFAR networks
# of chapters 5 and 7 use at every change of shape:

# %%
print(inspect.getsource(gr.blocks.ZeroPadShortcut))  # (`blocks` above is a table column now)

# %% [markdown]
# What the three options cost for ResNet-34:

# %%
rows = []
for option in "ABC":
    net = gr.get_model("resnet34", num_classes=1000, in_channels=3, shortcut=option)
    params, macs = shapes.totals(net, shapes.layer_table(net, (1, 3, 224, 224)))
    rows.append({"option": option, "params (M)": round(params / 1e6, 2), "G mult-adds": round(macs / 1e9, 3)})
pd.DataFrame(rows).set_index("option")

# %% [markdown]
# B costs almost nothing over A (three projections), while C adds a projection to every block.
# The paper measured top-1 error on ImageNet (10-crop) of 25.03% for A, 24.52% for B and 24.19%
# for C with ResNet-34. Two conclusions follow. B beats A, and the paper's explanation is that
# A's zero-padded channels learn no residual at all; B's three projections fix that almost for
# free, so B is kept. C gains a little more, but all three differences are small: all three
# options cure degradation, so projections are not what cures it, and C's gain does not pay for
# a projection on every block. C is dropped to save memory, time and parameters. For the
# bottleneck networks identity shortcuts matter even more: a projection on the 256- to
# 2048-channel outer ends of every block would double the block's cost.

# %% [markdown]
# ## 中文小结
#
# 50 层及以上的 ResNet 使用瓶颈块：先用 1x1 卷积把通道从 256 降到 64，在窄的宽度上做 3x3 卷积，
# 再用 1x1 卷积升回 256。按论文图 5 的比较，它与 64 通道的基本残差块代价相近，
# 却能处理 256 通道并多一层；若用基本块处理 256 通道，代价是它的 17 倍。
# 我们统计的乘加次数与论文表 1 在每个深度上相差不到 0.1 G。
# 形状改变处的快捷连接有 A、B、C 三种选择：选项 A 用步幅子采样并补零通道，不含参数。
# B 比 A 好（A 补出的零通道没有残差学习），且几乎不增加代价，所以保留 B；
# C 只再好一点，三者差别都很小，说明投影并非解决退化的关键，因此为节省内存、时间和参数而舍弃 C。

# %%
notebook.finish(T0, QUICK)
