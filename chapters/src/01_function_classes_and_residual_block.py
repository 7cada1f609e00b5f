# %% [markdown]
# # 1. Function classes and the residual block
#
# He et al., *Deep Residual Learning for Image Recognition* (CVPR 2016), starts from an awkward
# observation: stack more layers on a network that already works, train it the same way, and its
# **training** error can go *up*. Not overfitting (that would lower training error) but something
# about optimisation; the paper calls it **degradation** (退化). This chapter builds the intuition
# and the block the paper proposes, the **residual block** (残差块), using the `Residual` class
# from `gluon_resnet`, and shows how it relates to the compiled twin the later chapters train.
#
# **Settings:** none; nothing is trained, so quick mode (`GLUON_RESNET_QUICK=1`) and full mode
# run the same cells. **Expected time:** under a minute in full mode on a 2-core AMD EPYC
# (Zen 4, AVX-512), 2 threads.

# %%
%matplotlib inline
import time

T0 = time.perf_counter()

import inspect
import os
import tempfile

import gluon_resnet as gr  # first: it sets the thread count before MXNet loads
import mxnet as mx
from d2l import mxnet as d2l
from gluon_resnet import Residual, diagrams, notebook
from gluon_resnet.blocks import HybridResidual
from mxnet import autograd, np

QUICK = notebook.quick()
PARAMS = os.path.join(tempfile.mkdtemp(), "block.params")  # where blocks swap parameters below
print("settings: none (nothing is trained); quick mode:", QUICK)

# %% [markdown]
# ## Nested and non-nested function classes
#
# Think of an architecture as a *set* of functions $\mathcal{F}$: everything it can represent for
# some choice of weights. Training picks the member $f^*_\mathcal{F}$ closest to the truth $f^*$.
# Making the network bigger gives a new set $\mathcal{F}'$. If $\mathcal{F}'$ does **not**
# contain $\mathcal{F}$, nothing promises that its best member is any closer to $f^*$: in the
# left panel each class is bigger than the last, yet lies further from $f^*$. If every bigger
# class contains the smaller one, $\mathcal{F}_1 \subseteq \mathcal{F}_2 \subseteq \dots$,
# growing can only help or stay level (right panel).
#
# The question is therefore: how do we make adding layers produce a *nested* class? Easy in
# principle - the new layers only have to be able to compute the **identity mapping** (恒等映射)
# $f(\mathbf{x}) = \mathbf{x}$; then the deeper net can always imitate the shallower one.

# %%
diagrams.function_classes()

# %% [markdown]
# ## The residual block (残差块)
#
# A plain pair of layers must learn the whole mapping $f(\mathbf{x})$. A residual block instead
# learns the *difference* $g(\mathbf{x}) = f(\mathbf{x}) - \mathbf{x}$ and adds the input back on
# a **shortcut connection** (快捷连接); a ReLU follows the sum, so the block outputs
# $\mathrm{ReLU}(g(\mathbf{x}) + \mathbf{x})$. To pass its input through unchanged (for the
# non-negative inputs an earlier ReLU produces) it only has to push $g$ to zero, which weight
# decay and small initial weights already lean towards.
#
# Our `Residual` follows the lesson: 3x3 conv, **batch normalization** (批量规范化), ReLU, 3x3
# conv, batch normalization, then the sum with the shortcut and a final ReLU. An optional 1x1
# convolution on the shortcut lets the block change the number of channels and, with stride 2,
# halve height and width. The three cases, drawn by `gluon_resnet.diagrams`:

# %%
diagrams.residual_blocks()

# %% [markdown]
# The whole class we import, constructor included, printed from the package so the page and the
# code cannot drift apart:

# %%
print(inspect.getsource(Residual))

# %% [markdown]
# ## The same block as d2l's
#
# d2l 1.0.3 ships the lesson's block as `d2l.Residual`. Ours has the same layers under the same
# names, so one set of parameters loads into both; on the same input they must give the same
# output, in training mode (batch statistics) and in prediction mode (running averages).

# %%
X = np.random.uniform(size=(4, 3, 6, 6))
for kwargs in ({}, {"use_1x1conv": True, "strides": 2}):
    ours = Residual(6 if kwargs else 3, **kwargs)
    ours.initialize(mx.init.Xavier())
    ours(X)
    ours.save_parameters(PARAMS)
    theirs = d2l.Residual(6 if kwargs else 3, **kwargs)
    theirs.load_parameters(PARAMS)
    with autograd.train_mode():
        train_gap = float(np.abs(ours(X) - theirs(X)).max())
    predict_gap = float(np.abs(ours(X) - theirs(X)).max())
    print(f"Residual(**{kwargs}): largest |ours - d2l's| training mode {train_gap}, prediction mode {predict_gap}")

# %% [markdown]
# ## The two shape checks
#
# **Same shape in and out.** Without the 1x1 convolution the sum $g(\mathbf{x}) + \mathbf{x}$ only
# works when the main path keeps the input's shape: same channels, stride 1.

# %%
blk = Residual(3)
blk.initialize()
blk(X).shape

# %% [markdown]
# **Change of shape.** With `use_1x1conv=True, strides=2` both paths go to 6 channels and halve
# height and width, so the sum lines up again. This is how each ResNet stage begins.

# %%
blk = Residual(6, use_1x1conv=True, strides=2)
blk.initialize()
blk(X).shape

# %% [markdown]
# And the mistake everyone makes once: change the channel count but forget the shortcut's 1x1
# convolution. The main path produces 6 channels, the shortcut still carries 3, and the addition
# fails. The last line of MXNet's message says exactly that:

# %%
blk = Residual(6)
blk.initialize()
try:
    blk(X)
except mx.MXNetError as err:  # MXNet's C++ shape check
    print(str(err).strip().splitlines()[-1])

# %% [markdown]
# ## The identity is one step away
#
# The argument above says a residual block can switch itself off. Let us check it on real numbers:
# set the scale ($\gamma$) of the last batch norm to zero, so the main path outputs zeros. Then the
# block returns $\mathrm{ReLU}(0 + \mathbf{x}) = \mathbf{x}$ for any non-negative input (such as the
# output of an earlier ReLU). A plain block has no such easy exit: it would have to learn the
# identity through two convolutions and two non-linearities.

# %%
blk = Residual(3)
blk.initialize()
blk(X)  # runs once so the deferred shapes are known
blk.bn2.gamma.set_data(np.zeros(3))
print("largest |block(x) - x|:", float(np.abs(blk(X) - X).max()))

# %% [markdown]
# ## The block the later chapters train
#
# `Residual` is an `nn.Block`: Python runs its `forward` line by line, which is good for reading
# and slow for training. The networks trained in chapters 3, 5 and 7 are built from compiled
# (`HybridBlock`) blocks inside `HybridSequential` containers: `resnet18_d2l()` uses
# `HybridResidual`, the same layers under the same names whose `hybrid_forward` differs only in
# running the sum and the ReLU through oneDNN operators (faster on a CPU); the CIFAR networks use
# the family's `BasicBlock`. `resnet18_d2l(imperative=True)` builds the network from `Residual`
# itself.

# %%
print(inspect.getsource(HybridResidual.hybrid_forward))

# %% [markdown]
# The two are proven equal, not assumed: the package's tests
# (`tests/test_blocks.py::test_hybridized_twin_matches_the_lesson_block`) load one set of
# parameters into both and compare outputs, input gradients and every parameter's gradient. The
# same check in miniature, on outputs after compiling the twin:

# %%
lesson = Residual(6, use_1x1conv=True, strides=2)
lesson.initialize(mx.init.Xavier())
lesson(X)
lesson.save_parameters(PARAMS)
twin = HybridResidual(6, use_1x1conv=True, strides=2)
twin.load_parameters(PARAMS)
twin.hybridize()
with autograd.train_mode():
    gap = float(np.abs(lesson(X) - twin(X)).max())
print("largest |Residual - compiled HybridResidual|:", gap)

# %% [markdown]
# d2l's summary puts it this way: with a residual block, letting the data pass through unchanged
# becomes a layer's *default* behaviour, and the stacked layers only have to learn a correction to
# it. The paper argues the same point as a matter of conditioning (Section 3.1): if the best
# function for some layers is closer to the identity than to zero, a solver should find it more
# easily as a small perturbation of the identity than by learning the whole function afresh.
#
# Two more points from d2l's discussion. First, the idea has a predecessor: **highway networks**
# (Srivastava et al., 2015) also carried the input past a stack of layers, but through a *gate*,
# a learned sigmoid that mixes the input and the layers' output. A gate has parameters and can
# close; the residual shortcut is a fixed identity with nothing to learn, which is what makes the
# "do nothing" solution free. Second, because a block with its last batch-norm scale at zero *is*
# the identity (for non-negative inputs, as checked above), blocks initialised that way can be
# **inserted into a network while it trains**: right after the insertion the network computes
# exactly what it did before, and training then grows the new blocks away from the identity only
# as far as the loss asks. For very large networks this can shorten training.
#
# Chapter 2 stacks these blocks into the lesson's ResNet-18, and
# chapter 5 shows the degradation problem - and its cure - on real training runs.
#
# ## 中文小结
#
# 加深网络并不保证更好：只有当新的函数类包含旧的函数类（嵌套）时，更大的模型才不会离目标函数更远。
# 残差块让新增的层只需学习残差 $g(\mathbf{x}) = f(\mathbf{x}) - \mathbf{x}$，
# 并通过快捷连接把输入加回，输出为 $\mathrm{ReLU}(g(\mathbf{x}) + \mathbf{x})$；
# 把最后一个批量规范化的缩放参数置零，对非负输入，块就变成恒等映射。
# 这也意味着可以在训练过程中插入这样初始化为恒等映射的新块，而不改变网络当前的输出。
# 在它之前，高速公路网络（highway networks）用带门控的旁路传递输入；残差块的快捷连接则是没有参数的恒等映射。
# 我们的 `Residual` 与 d2l 的 `d2l.Residual` 在相同参数下输出完全一致，
# 而后续章节训练的是编译版 `HybridResidual`，测试保证两者数值相同。

# %%
notebook.finish(T0, QUICK)
