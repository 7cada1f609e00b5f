"""Diagrams: each is a labelled figure, and ResNet-18's drawn shapes are the model's real shapes."""
import pytest
from matplotlib.figure import Figure

import gluon_resnet as gr
from gluon_resnet import diagrams, shapes


def test_block_diagrams_label_every_layer_and_the_output():
    fig = diagrams.residual_blocks()
    drawn = diagrams.texts(fig)
    assert [ax.get_title() for ax in fig.axes] == ["plain block", "residual block",
                                                  "residual block, 1x1 shortcut"]
    assert drawn.count("3x3 conv") == 6 and drawn.count("+") == 2  # the plain block has no sum
    assert "ReLU(g(x) + x)" in drawn and "f(x)" in drawn and "1x1 conv\n(stride s)" in drawn


def test_resnet18_diagram_shows_the_shapes_the_model_produces():
    rows = shapes.layer_table(gr.resnet18_d2l(), (1, 1, 96, 96))
    real = [" x ".join(map(str, r["output_shape"][1:])) for r in rows if r["kind"] != "BatchNorm"]
    real.remove("64 x 48 x 48")  # the ReLU's shape, drawn in one box with the conv and the BN
    drawn = [shape for _, shape in diagrams.RESNET18_96[1:]]
    assert drawn == real
    assert set(drawn) <= set(diagrams.texts(diagrams.resnet18()))


@pytest.mark.parametrize("draw, expected", [
    (diagrams.fig5, ["3x3 conv, 64", "1x1 conv, 256", "256-d output"]),
    (diagrams.resnext, ["3x3 conv, 128,\n32 groups", "concatenate: 128 channels"]),
    (diagrams.function_classes, ["$\\mathcal{F}_4$", "$f^*$"]),
])
def test_each_diagram_is_a_figure_with_its_labels(draw, expected):
    fig = draw()
    assert isinstance(fig, Figure)
    assert set(expected) <= set(diagrams.texts(fig))


def test_non_nested_classes_grow_while_moving_away_from_the_truth():
    ax = diagrams.function_classes().axes[0]
    star = ax.get_lines()[0].get_xydata()[0]
    ellipses = ax.patches
    sizes = [e.width for e in ellipses]
    distances = [((e.center[0] - star[0]) ** 2 + (e.center[1] - star[1]) ** 2) ** 0.5 for e in ellipses]
    assert sizes == sorted(sizes) and distances == sorted(distances)
