# %% [markdown]
# # 8. Using a trained ResNet
#
# The earlier chapters train networks and score them on the test set. This one starts from a
# network that is already trained: the package ships the weights of `fmnist_resnet9`
# (`fmnist_resnet8` with one more convolution at the full 28x28 in front of its stride-2 stem),
# trained by `--preset long`: one-cycle SGD for 70 epochs on images shifted by up to one pixel at
# random (one-pixel random crops) and mirrored, with weight decay 2e-4 and label smoothing 0.1. We
# load them without training anything, classify test images and a picture drawn in this notebook, ask
# Grad-CAM where the network looked when it got shirts and t-shirts right and wrong, and finally
# export the network to ONNX and run it with onnxruntime, outside MXNet.
#
# **Settings** (printed by the next cell): nothing is trained; full mode scores all 10,000 test
# images and shows Grad-CAM for 4 images per group, quick mode (`GLUON_RESNET_QUICK=1`) 1,000
# images and 2 per group. **Expected time:** under a minute in full mode on a 2-core AMD EPYC, 2
# threads (0.3 minutes on a Zen 3, AVX2, the machine of the committed outputs), and less in quick mode.

# %%
%matplotlib inline
import inspect
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

T0 = time.perf_counter()
QUICK = os.environ.get("GLUON_RESNET_QUICK") == "1"

import gluon_resnet as gr  # first: it sets the thread count before MXNet loads
import mxnet as mx
import numpy as np
from gluon_resnet import explain, onnx_export, plots, predict, pretrained
from gluon_resnet.data import ArrayLoader
from gluon_resnet.loop import predict as predict_labels

# Full mode is what the committed outputs come from; quick mode is what the test suite runs.
SETTINGS = dict(test_images=1000, per_group=2) if QUICK else dict(test_images=10000, per_group=4)
SETTINGS

# %% [markdown]
# ## Weights that ship with the package
#
# `get_model(name, pretrained=True)` builds the network and loads `gluon_resnet/weights/NAME.params`,
# after checking the file's sha256 against the manifest `NAME.json` beside it; nothing is
# downloaded. The manifest also records how the weights were made and what they scored.

# %%
net = gr.get_model("fmnist_resnet9", pretrained=True)
net.hybridize()
info = pretrained.manifest("fmnist_resnet9")
for key in ("train_command", "command", "epochs", "train_minutes", "cpu", "test_accuracy",
            "test_accuracy_tta", "bytes", "sha256"):
    print(f"{key:>18}: {info[key]}")

# %% [markdown]
# `test_accuracy` is the plain score on the 10,000 test images; `test_accuracy_tta` adds the
# scores of each image's mirror image, as the recipe does at test time. These weights are seed 2 of
# `--preset long`, trained alone with both threads on a Zen 3 (`cpu`; AVX2, no AVX-512), where its
# 70 epochs took 50.9 minutes in the training loop (`train_minutes`), 2.65 times the 19.2 minutes
# the same command took on the Zen 5 of `docs/frontier.md`. There, five seeds of the recipe scored
# 0.9481-0.9511 with TTA (mean 0.9495; seed 2 gave 0.9511); this run, on another CPU whose kernels
# add in another order, gave 0.9493, inside that range. Before these weights the package shipped
# seed 3 of `long`'s earlier recipe, random erasing instead of crops (`--preset long --crop-pad 0
# --erase 0.25`: 0.9438, 0.9478 with TTA): the new net is 0.43 points better plain and 0.15 with
# TTA, because mirror-image TTA adds less to a net that trained on shifted images (+0.12 against
# +0.40). Before that it shipped the erasing recipe for 35 epochs (0.9460 with TTA), and before that
# `fast`'s recipe on `fmnist_resnet9` for 21 epochs (0.9430). The package also ships
# `fmnist_resnet8`'s weights, `fast`'s recipe for 21 epochs on the net without the full-resolution
# convolution (0.9371, 0.9398 with TTA; `get_model("fmnist_resnet8", pretrained=True)`). These
# weights get the four drawings in `docs/examples/` right (`python -m gluon_resnet.predict
# docs/examples/*`), the drawn sneaker at 0.511 with a bag second at 0.221. Scoring the loaded
# network again gives the manifest's plain figure (on every test image in full mode, on a subset
# in quick mode).

# %%
data = gr.load_fashion_mnist()
images, labels = data.test_images[:SETTINGS["test_images"]], data.test_labels[:SETTINGS["test_images"]]
y_true, y_pred = predict_labels(net, ArrayLoader(images, labels, 500), mx.cpu())
print(f"test accuracy on {len(y_true)} images: {(y_true == y_pred).mean():.4f} "
      f"(manifest: {info['test_accuracy']:.4f} on {info['test_images']})")
mistakes = Counter((int(t), int(p)) for t, p in zip(y_true, y_pred) if t != p)
print(f"{sum(mistakes.values())} mistakes; the five most frequent (true class -> predicted class):")
for (t, p), n in mistakes.most_common(5):
    print(f"  {gr.get_fashion_mnist_labels([t])[0]:>11} -> {gr.get_fashion_mnist_labels([p])[0]:<11} {n:>4}")

# %% [markdown]
# ## Predicting test images
#
# `predict.probabilities` turns the ten scores of each image into probabilities with a softmax.
# Each title shows the likeliest class and its probability, with the true class in brackets.

# %%
probs = predict.probabilities(net, images[:16])
titles = [f"{predict.top_k(p, 1)[0][0]} {p.max():.2f}\n({name})"
          for p, name in zip(probs, gr.get_fashion_mnist_labels(labels[:16]))]
plots.show_images(images[:16], titles, ncols=8)

# %% [markdown]
# All sixteen are right, with probabilities between 0.83 (a white coat) and 0.95 (a checked shirt)
# rather than near 1: the recipe trains with label smoothing 0.1, whose target gives the true class
# 0.91 and every other class 0.01. The mistakes printed above the figure come mostly from the
# upper-body classes: the two most frequent are shirts taken for t-shirts (69) and t-shirts taken
# for shirts (67), a quarter of all 519, and the next three are coats taken for shirts (36) and
# shirts taken for coats (35) and for pullovers (32).

# %% [markdown]
# ## A picture of our own
#
# A picture from outside the data set must first look like a Fashion-MNIST image: gray, a light
# garment on a black background, the garment filling the 28x28 frame along its longer side. The
# data set was made from product photos on white backgrounds in the same way (trim, scale the
# longer side to 28, centre, negate). `predict.prepare` does those steps:

# %%
print(inspect.getsource(predict.prepare))

# %% [markdown]
# We draw a red t-shirt on white paper with Pillow, as a photo of one would look, and let the
# network classify it. `python -m gluon_resnet.predict photo.jpg --show out.png` does the same for
# picture files and draws the same figure.

# %%
from PIL import Image, ImageDraw

photo = Image.new("RGB", (320, 320), "white")
ImageDraw.Draw(photo).polygon([(110, 40), (140, 60), (180, 60), (210, 40), (290, 90), (260, 140),
                               (230, 120), (230, 290), (90, 290), (90, 120), (60, 140), (30, 90)],
                              fill=(200, 30, 30))
display(photo.resize((100, 100)))
drawn = predict.prepare(photo)
drawn_probs = predict.probabilities(net, drawn[None])[0]
print(predict.top_k(drawn_probs))
predict.plot_probabilities([drawn], [drawn_probs], ["drawn t-shirt, prepared"])

# %% [markdown]
# The network calls the drawing a t-shirt with probability 0.933, a shirt coming second
# (0.012).
#
# ## Where the network looks: Grad-CAM
#
# Grad-CAM (Selvaraju et al., 2017) asks which places in a layer's feature maps raised a class's
# score. It takes the gradient of that score with respect to the maps, averages it over each map
# to get one weight per channel, and keeps the positive part of the weighted sum of the maps. For
# `fmnist_resnet9` the default layer is the last stage, whose maps are only 4x4; `stage2` gives
# 7x7 maps, a little sharper, so we use that here.

# %%
print(inspect.getsource(explain.grad_cam))

# %% [markdown]
# Shirts and t-shirts are the pair this network confuses most (the counts above). Below are test
# images of both, answered right (green titles) and wrong (red titles), each under the map of the
# class the network chose.

# %%
SHIRT, TSHIRT = 6, 0
groups = {"shirt, right": (y_true == SHIRT) & (y_pred == SHIRT),
          "t-shirt, right": (y_true == TSHIRT) & (y_pred == TSHIRT),
          "shirt taken for t-shirt": (y_true == SHIRT) & (y_pred == TSHIRT),
          "t-shirt taken for shirt": (y_true == TSHIRT) & (y_pred == SHIRT)}
print({name: int(mask.sum()) for name, mask in groups.items()})
take = np.concatenate([np.flatnonzero(mask)[:SETTINGS["per_group"]] for mask in groups.values()])
X = images[take][:, None].astype(np.float32) / 255
cams, _ = explain.grad_cam(net, X, layer="stage2")
names = gr.get_fashion_mnist_labels
explain.plot_cams(images[take], cams,
                  [f"true {t}\npred {p}" for t, p in zip(names(y_true[take]), names(y_pred[take]))],
                  ["tab:green" if y_true[i] == y_pred[i] else "tab:red" for i in take],
                  ncols=2 * SETTINGS["per_group"])

# %% [markdown]
# The maps are coarse: each cell of a 7x7 map covers 4x4 pixels of the image. To compare the two
# classes over many images, we ask for the shirt map and the t-shirt map of every shirt and t-shirt
# scored above, and measure the share of each map's heat that lies in the top third of the image,
# where collars, shoulders and sleeves are:

# %%
def top_third_share(cams):
    return cams[:, :cams.shape[1] // 3].sum() / cams.sum()

for name, mask in groups.items():
    if not mask.any():
        continue
    Xg = images[mask][:, None].astype(np.float32) / 255
    shares = [top_third_share(explain.grad_cam(net, Xg, classes=np.full(len(Xg), c), layer="stage2")[0])
              for c in (SHIRT, TSHIRT)]
    print(f"{name:>24} ({mask.sum():>3} images): top-third share of the shirt map {shares[0]:.2f}, "
          f"of the t-shirt map {shares[1]:.2f}")

# %% [markdown]
# In three groups of four the shirt map holds more of its heat in the top third than the t-shirt
# map: shirts answered right (0.37 against 0.30), t-shirts taken for shirts (0.38 against 0.32) and
# shirts taken for t-shirts (0.39 against 0.36). The exception is t-shirts answered right, where the
# t-shirt map sits higher (0.38 against 0.34); in the figure, two of the four shown are one spot at
# the neckline or a shoulder. So for this network the evidence for "shirt" lies near the collar,
# shoulders and tops of the sleeves on every kind of image, while the evidence for "t-shirt" lies
# high on the t-shirts it gets right and lower on the rest (a third is what heat spread evenly
# would give). It is a coarse measure: it shows where the evidence for each class lies, not what in
# those pixels the network weighs. The weights this chapter used before gave other pictures: the
# erasing recipe's 70-epoch net put the shirt map higher in all four groups, its 35-epoch net put
# the t-shirt map higher in three of four, and `fast`'s recipe on `fmnist_resnet9` for 21 epochs
# put the map of the class the network chose higher in three of four. Nets of nearly the same
# accuracy can weigh the same images in different places, so a Grad-CAM reading describes one
# trained net, not the architecture.

# %% [markdown]
# `python -m gluon_resnet.evaluate DIR --cam` draws the same kind of figure for a trained run
# (`DIR/cam.png`), with right and wrong answers from all classes.
#
# ## Outside MXNet: ONNX and onnxruntime
#
# ONNX is a file format for networks that many runtimes read. MXNet 1.9.1 ships an exporter,
# `mx.onnx.export_model`; `onnx_export.export_onnx` calls it on the network's compiled graph and
# adds the three converters it lacks for numpy-style operators (`x + y`, `npx.relu`, `np.pad`),
# so every network of the registry exports. The batch size stays free in the file.

# %%
folder = Path(tempfile.mkdtemp())
path = onnx_export.export_onnx(net, folder / "fmnist_resnet9.onnx", (1, 1, 28, 28))
import onnx

graph = onnx.load(str(path)).graph
shape = [d.dim_value or "any" for d in graph.input[0].type.tensor_type.shape.dim]
print(f"{path.name}: {path.stat().st_size:,} bytes, input shape {shape}")
print(Counter(node.op_type for node in graph.node))

# %% [markdown]
# onnxruntime runs the file; on the same test images its scores should match MXNet's to float32
# rounding and pick the same class everywhere:

# %%
session = onnx_export.session(path)
check = onnx_export.parity(net, session, (X.asnumpy() for X, _ in ArrayLoader(images, labels, 500)))
print(f"same class for {check['same_class']} of {check['count']} test images, "
      f"largest logit difference {check['max_abs_diff']:.1e}")

# %% [markdown]
# The file needs nothing from MXNet or from this package. A fresh Python process that imports only
# numpy and onnxruntime classifies the drawn t-shirt:

# %%
np.save(folder / "drawn.npy", drawn)
code = f"""
import sys, numpy as np, onnxruntime as ort
x = np.load({str(folder / 'drawn.npy')!r}).astype(np.float32)[None, None] / 255
session = ort.InferenceSession({str(path)!r}, providers=["CPUExecutionProvider"])
scores = session.run(None, {{session.get_inputs()[0].name: x}})[0]
print("class", int(scores.argmax()), "- mxnet imported:", "mxnet" in sys.modules)
"""
print(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip(),
      f"({gr.get_fashion_mnist_labels([int(drawn_probs.argmax())])[0]} is class {int(drawn_probs.argmax())})")

# %% [markdown]
# For a run folder, `python -m gluon_resnet.evaluate DIR --onnx` writes `DIR/model.onnx` and makes
# the same check on the test set. The lesson's imperative ResNet-18 (`imperative=True`, an
# `nn.Block`) has no graph to export; `onnx_export.hybrid_twin(net)` copies its parameters into the
# compiled twin, which computes the same function, and that twin exports. How fast each runtime
# answers one image or a batch of 256 on this CPU: `python -m gluon_resnet.bench --inference`.
#
# ## 中文小结
#
# 本章直接使用随包发布、已训练好的 `fmnist_resnet9` 权重：`get_model(..., pretrained=True)` 离线加载并校验
# sha256，测试集准确率与清单一致。`predict.prepare` 按 Fashion-MNIST 的制作方式（灰度、深色背景、
# 按长边缩放到 28 像素并居中）处理自己的图片，再给出前三个类别的概率。Grad-CAM 用类别得分对特征图的
# 梯度加权，显示网络在衬衫与 T 恤的对错样本上关注的位置。最后把网络导出为 ONNX，用 onnxruntime 在
# MXNet 之外运行，预测类别与 MXNet 完全一致。

# %%
from gluon_resnet import notebook

notebook.finish(T0, QUICK)
