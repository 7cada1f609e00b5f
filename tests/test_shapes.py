"""The layer walk: shapes, parameters and multiply-adds, checked by hand and against the paper."""
import re

import pytest
from mxnet.gluon import nn

from gluon_resnet.models import get_model
from gluon_resnet.shapes import (count_params, layer_macs, layer_table, main, model_table, totals,
                                 weighted_depth)
from helpers import ROOT

PAPER_GFLOPS = {"resnet18": 1.8, "resnet34": 3.6, "resnet50": 3.8, "resnet101": 7.6, "resnet152": 11.3}


def test_the_lessons_walk_of_resnet18():
    net = get_model("resnet18_d2l")
    rows = layer_table(net, (1, 1, 224, 224))
    shapes = [r["output_shape"] for r in rows]
    assert shapes[3] == (1, 64, 56, 56)  # after the stem's max-pool
    assert [s[2] for s in shapes[4:8]] == [56, 28, 14, 7]  # one stage each
    assert shapes[8:] == [(1, 512, 1, 1), (1, 10)]
    assert sum(r["params"] for r in rows) == count_params(net) == 11_178_378


def test_multiply_adds_by_hand():
    net = nn.HybridSequential()
    net.add(nn.Conv2D(4, 3, padding=1, in_channels=2), nn.Conv2D(8, 3, padding=1, groups=2),
            nn.BatchNorm(), nn.Flatten(), nn.Dense(10))
    rows = layer_table(net, (3, 2, 5, 5))
    per_image = [r["macs"] // 3 for r in rows]
    assert per_image == [4 * 2 * 9 * 25, 8 * 2 * 9 * 25, 0, 0, 10 * 8 * 25]
    assert [r["kind"] for r in rows] == ["Conv2D", "Conv2D", "BatchNorm", "Flatten", "Dense"]
    assert layer_macs(nn.Activation("relu"), (1, 4)) == 0


@pytest.mark.parametrize("name", PAPER_GFLOPS)
def test_multiply_adds_agree_with_the_paper_table_1(name):
    net = get_model(name, num_classes=1000, in_channels=3)
    params, macs = totals(net, layer_table(net, (1, 3, 224, 224)))
    assert macs / 1e9 == pytest.approx(PAPER_GFLOPS[name], rel=0.03)


def test_depth_expands_nested_blocks_and_totals_agree():
    net = get_model("cifar_resnet20")
    top, deep = layer_table(net, (2, 1, 32, 32)), layer_table(net, (2, 1, 32, 32), depth=3)
    assert {r["level"] for r in top} == {1} and {r["level"] for r in deep} == {1, 2, 3}
    assert [r["name"] for r in top] == ["stem", "stage1", "stage2", "stage3", "pool", "fc"]
    assert "stage2.0.shortcut" in [r["name"] for r in deep]
    assert totals(net, top) == totals(net, deep)
    leaves = [r for r in layer_table(net, (2, 1, 32, 32), depth=9) if r["kind"] in ("Conv2D", "Dense")]
    assert sum(r["macs"] for r in leaves) == totals(net, top)[1]


def test_count_params_needs_known_shapes():
    with pytest.raises(ValueError, match="forward pass"):
        count_params(nn.Dense(10))
    assert count_params(nn.BatchNorm(in_channels=4)) == 8  # running mean/var are not trainable


@pytest.mark.parametrize("name,depth", [("resnet18_d2l", 18), ("resnet152", 152), ("plain34", 34),
                                        ("resnext50_32x4d", 50), ("cifar_resnet110", 110),
                                        ("resnet50_v2", 50)])
def test_weighted_depth_is_the_number_in_the_name(name, depth):
    assert weighted_depth(get_model(name)) == depth


def test_cli_prints_the_walk(run_cli):
    out = run_cli("gluon_resnet.shapes", "resnet18_d2l", "--input", "1,1,224,224")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "1x64x56x56" in lines[4] and "1x512x7x7" in lines[8] and "1x10" in lines[10]
    assert re.search(r"total: 11,178,378 trainable parameters, 1,734,890,496 multiply-adds", out.stdout)


@pytest.mark.parametrize("args,message", [
    (["resnet19"], "unknown model 'resnet19'; choose one of: "),
    (["--input", "1,1,224"], "--input must be four positive integers"),
    (["simple_residual_cnn", "--input", "1,1,8,8"], "the network cannot take an input of shape (1, 1, 8, 8), too small"),
])
def test_cli_user_errors_are_one_line(capsys, args, message):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and out == ""
    assert err.startswith("error: " + message) and err.count("\n") == 1


def test_cli_error_has_no_traceback(run_cli):
    out = run_cli("gluon_resnet.shapes", "resnet19")
    assert out.returncode == 2 and out.stderr.startswith("error: unknown model") and \
        "Traceback" not in out.stderr


def test_the_models_page_table_rows_are_what_the_command_prints():
    names = ["cifar_resnet20", "cifar_plain110", "fmnist_resnet8", "fmnist_resnet8_wide", "fmnist_resnet9",
             "fmnist_resnet15", "simple_residual_cnn"]
    fresh = model_table(names).splitlines()
    page = (ROOT / "docs" / "models.md").read_text().splitlines()  # the book's Models page
    assert fresh[0] in page
    for row in fresh[2:]:
        assert row in page, row


def test_an_input_too_small_for_the_network_is_a_user_error_in_python_too():
    from gluon_resnet.errors import UserError
    with pytest.raises(UserError, match=r"cannot take an input of shape \(1, 1, 2, 2\), too small for its layers "
                                        r"\(.*kernel size exceed input\): use a larger input"):
        layer_table(get_model("simple_residual_cnn"), (1, 1, 2, 2))
