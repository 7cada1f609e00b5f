# %% [markdown]
# # 1. Function classes and the residual block
#
# He et al., *Deep Residual Learning for Image Recognition* (CVPR 2016), starts from an awkward
# observation: stack more layers on a network that already works, train it the same way, and its
# **training** error can go *up*. Not overfitting (that would lower training error) but something
# about optimisation. This chapter builds the intuition and the block the paper proposes, using the
# `Residual` class from `gluon_resnet` (the same code the later chapters train).
#
# Run it top to bottom. `GLUON_RESNET_QUICK=1` changes nothing here: every cell is cheap.

# %%
import os
import time

T0 = time.perf_counter()
QUICK = os.environ.get("GLUON_RESNET_QUICK") == "1"

%matplotlib inline
import gluon_resnet  # first: it sets the thread count before MXNet loads
from gluon_resnet import Residual
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse, FancyArrowPatch, FancyBboxPatch
from mxnet import np, npx

npx.set_np()

# %% [markdown]
# ## Nested and non-nested function classes
#
# Think of an architecture as a *set* of functions $\mathcal{F}$: everything it can represent for
# some choice of weights. Training picks the member $f^*_\mathcal{F}$ closest to the truth $f^*$.
# Making the network bigger gives a new set $\mathcal{F}'$. If $\mathcal{F}'$ does **not**
# contain $\mathcal{F}$, nothing promises that its best member is any closer to $f^*$ - it may
# even be further away (left panel). If every bigger class contains the smaller one,
# $\mathcal{F}_1 \subseteq \mathcal{F}_2 \subseteq \dots$, growing can only help or stay level
# (right panel).
#
# The question is therefore: how do we make adding layers produce a *nested* class? Easy in
# principle - the new layers only have to be able to compute the identity $f(\mathbf{x}) = \mathbf{x}$,
# then the deeper net can always imitate the shallower one.

# %%
def draw_classes(ax, nested, title):
    """Growing ellipses for F1..F4 and a star for the truth f*."""
    centres = [(0, 0), (0.25, 0.1), (0.5, 0.2), (0.75, 0.3)] if nested else \
              [(0, 0), (0.6, -0.5), (-0.3, 0.5), (0.9, 0.45)]
    for i, (x, y) in enumerate(centres):
        size = (1.0 + 0.55 * i) if nested else 1.1
        ax.add_patch(Ellipse((x, y), size * 1.2, size * 0.8, fill=False, lw=1.5, color=f"C{i}"))
        label_y = y + size * 0.4 - 0.2 if nested else y - 0.05
        ax.text(x - 0.1, label_y, f"$\\mathcal{{F}}_{i + 1}$", color=f"C{i}", fontsize=11)
    ax.plot([1.55], [0.55], "k*", ms=12)
    ax.text(1.62, 0.5, "$f^*$", fontsize=12)
    ax.set(xlim=(-1.2, 2.4), ylim=(-1.3, 1.6), title=title, aspect="equal")
    ax.set_axis_off()

fig = Figure(figsize=(8, 3.2), layout="constrained")
left, right = fig.subplots(1, 2)
draw_classes(left, nested=False, title="non-nested: bigger is not always closer")
draw_classes(right, nested=True, title="nested: each class contains the last")
fig

# %% [markdown]
# ## The residual block
#
# A plain pair of layers must learn the whole mapping $f(\mathbf{x})$. A residual block instead
# learns the *difference* $g(\mathbf{x}) = f(\mathbf{x}) - \mathbf{x}$ and adds the input back on a
# shortcut: $f(\mathbf{x}) = g(\mathbf{x}) + \mathbf{x}$. To become the identity it only has to
# push $g$ to zero, which weight decay and small initial weights already lean towards.
#
# Our `Residual` follows the lesson: 3x3 conv, batch norm, ReLU, 3x3 conv, batch norm, then the
# sum with the shortcut and a final ReLU. An optional 1x1 convolution on the shortcut lets the
# block change the number of channels and, with stride 2, halve height and width.

# %%
def box(ax, x, y, text, colour="#dbe9f6"):
    ax.add_patch(FancyBboxPatch((x - 0.9, y - 0.22), 1.8, 0.44, boxstyle="round,pad=0.05",
                                fc=colour, ec="k", lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=9)

def arrow(ax, start, end, **style):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=10, lw=1, **style))

def draw_block(ax, residual):
    layers = ["3x3 conv", "batch norm", "ReLU", "3x3 conv", "batch norm"]
    ys = [4.2, 3.6, 3.0, 2.4, 1.8]
    ax.text(0, 4.9, "x", ha="center", fontsize=12)
    arrow(ax, (0, 4.75), (0, 4.47))
    for i, (name, y) in enumerate(zip(layers, ys)):
        box(ax, 0, y, name)
        if i:
            arrow(ax, (0, ys[i - 1] - 0.27), (0, y + 0.27))
    if residual:
        box(ax, 0, 1.1, "+", "#fde2c8")
        arrow(ax, (0, 1.53), (0, 1.37))
        ax.add_patch(FancyArrowPatch((0.1, 4.75), (0.95, 1.1), connectionstyle="arc3,rad=-0.45",
                                     arrowstyle="-|>", mutation_scale=10, lw=1.2, color="C3"))
        ax.text(1.35, 3.0, "shortcut\n(1x1 conv if\nshape changes)", fontsize=8, color="C3")
        top = 0.83
    else:
        top = 1.53
    box(ax, 0, 0.4, "ReLU")
    arrow(ax, (0, top), (0, 0.67))
    ax.text(0, -0.3, "g(x) + x" if residual else "f(x)", ha="center", fontsize=11)
    ax.set(xlim=(-1.6, 2.4), ylim=(-0.6, 5.1), title="residual block" if residual else "plain block")
    ax.set_axis_off()

fig = Figure(figsize=(7, 4.2), layout="constrained")
for ax, residual in zip(fig.subplots(1, 2), (False, True)):
    draw_block(ax, residual)
fig

# %% [markdown]
# The forward pass of the class we import reads exactly like the diagram:

# %%
import inspect

print(inspect.getsource(Residual.forward))

# %% [markdown]
# ## The two shape checks
#
# **Same shape in and out.** Without the 1x1 convolution the sum $g(\mathbf{x}) + \mathbf{x}$ only
# works when the main path keeps the input's shape: same channels, stride 1.

# %%
X = np.random.uniform(size=(4, 3, 6, 6))
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
except Exception as err:  # MXNet raises MXNetError from its C++ shape check
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
with_zero_branch = blk(X)
print("largest |block(x) - x|:", float(np.abs(with_zero_branch - X).max()))

# %% [markdown]
# In the paper's words the shortcut makes the identity the *default*; the stacked layers only have
# to learn a correction to it. Chapter 2 stacks these blocks into the lesson's ResNet-18,
# chapter 5 shows the degradation problem - and its cure - on real training runs.

# %%
print(f"{'quick' if QUICK else 'full'} mode: ran in {(time.perf_counter() - T0) / 60:.1f} min, "
      f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
