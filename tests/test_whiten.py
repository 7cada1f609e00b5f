"""whiten: the first convolution's filters whiten real patches, stay frozen through training, and
``train --whiten`` wires them in (or refuses a net they do not fit, in one line)."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import np as mnp

from gluon_resnet.data import load_data_fashion_mnist
from gluon_resnet.loop import start
from gluon_resnet.models import get_model
from gluon_resnet.run import load_model
from gluon_resnet.whiten import first_conv, patch_components, whiten_first_conv, whitening_filters
from helpers import fails
from helpers import train_cli as cli


def _weights(net):
    """Every parameter of ``net`` by its place in the net (``stem.0.weight``), as numpy."""
    return {k: p.data().asnumpy() for k, p in net._collect_params_with_prefix().items()}


def test_the_filters_decorrelate_patches_of_images_they_were_not_computed_from(small_real):
    train_images, _, test_images, _ = small_real
    net = get_model("fmnist_resnet9", num_classes=10)
    whiten_first_conv(net, train_images)
    net.initialize()
    conv = first_conv(net)
    out = conv(mnp.array(test_images[:, None].astype(np.float32) / 255)).asnumpy()  # (N, 16, 26, 26)
    channels = out.transpose(1, 0, 2, 3).reshape(16, -1)
    assert np.allclose(channels[8:], -channels[:8], atol=1e-5)  # each filter has its negative
    corr = np.corrcoef(channels[:8])
    assert np.abs(corr - np.eye(8)).max() < 0.1, corr.round(2)  # raw pixels: neighbours correlate ~0.9
    pixels = np.stack([test_images[:, 10:20, 10:20].ravel(), test_images[:, 10:20, 11:21].ravel()])
    assert np.corrcoef(pixels)[0, 1] > 0.5
    variances, _ = patch_components(train_images)
    assert variances[0] > 1000 * 5e-4  # the leading direction is far above eps, so it comes out at unit variance
    assert 0.8 < channels[0].var() < 1.25


def test_the_leading_direction_is_the_patch_mean():
    # Smooth images: a 3x3 patch is mostly one grey level, so the first component is a flat filter.
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (50, 7, 7))
    images = np.kron(coarse, np.ones((4, 4))).astype(np.uint8)  # 28x28, 4x4 blocks
    _, directions = patch_components(images)
    first = directions[0] * np.sign(directions[0].sum())
    assert np.allclose(first, 1 / 3, atol=0.05)


def test_training_moves_every_weight_but_the_whitened_ones(tmp_path):
    out = cli("--model", "fmnist_resnet9", "--whiten", "--subset", "100", "--epochs", "1", "--batch-size", "50",
              "--lr", "0.1", "--quiet", "--out", tmp_path / "run")
    assert out.returncode == 0, out.stderr
    train_iter, _ = load_data_fashion_mnist(50, subset=100)
    expected = whitening_filters(train_iter.images, 16)
    net = load_model(tmp_path / "run")
    assert np.array_equal(first_conv(net).weight.data().asnumpy(), expected)
    fresh = get_model("fmnist_resnet9", num_classes=10)  # the run's starting weights: the same seed (0)
    whiten_first_conv(fresh, train_iter.images)
    start(fresh, [mx.cpu()], None, 0)
    trained = _weights(net)
    begun = _weights(fresh)
    frozen = [k for k in trained if np.array_equal(trained[k], begun[k])]
    assert frozen == ["stem.0.weight"], frozen  # the whitened filters, and nothing else


def test_a_resumed_run_keeps_the_whitened_filters_frozen(tmp_path):
    run = tmp_path / "run"
    first = cli("--model", "fmnist_resnet9", "--whiten", "--subset", "100", "--epochs", "1", "--batch-size", "50",
                "--quiet", "--out", run)
    assert first.returncode == 0, first.stderr
    before = _weights(load_model(run))
    more = cli("--resume", run, "--epochs", "2", "--quiet")
    assert more.returncode == 0, more.stderr
    after = _weights(load_model(run))
    assert [k for k in after if np.array_equal(after[k], before[k])] == ["stem.0.weight"]


def test_a_net_whose_first_convolution_cannot_hold_the_pairs_is_a_one_line_error(capsys, tmp_path):
    err = fails(capsys, "--model", "fmnist_resnet8", "--whiten", "--subset", "20", "--epochs", "1",
                "--out", tmp_path / "run")
    assert err.startswith("error: --whiten needs an even number of first-layer filters") and "has 32" in err
    assert "--no-whiten" in err  # the way out, since --preset best whitens
    assert not (tmp_path / "run" / "metrics.json").exists()


@pytest.mark.parametrize("channels", [15, 20])
def test_filter_counts_that_do_not_fit_are_refused(channels):
    images = np.zeros((3, 28, 28), np.uint8)
    with pytest.raises(Exception, match="--whiten needs an even number"):
        whitening_filters(images, channels)


def test_images_with_other_channels_than_the_convolution_reads_are_refused():
    with pytest.raises(Exception, match="reads 3 channels, the images have 1"):
        whitening_filters(np.zeros((3, 28, 28), np.uint8), 16, in_channels=3)


def test_the_docs_filter_figure_is_written_and_bad_arguments_exit_2(tmp_path, capsys):
    import importlib.util

    from helpers import ROOT
    spec = importlib.util.spec_from_file_location("whiten_filters", ROOT / "docs" / "whiten_filters.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main([str(tmp_path / "filters.txt")]) == 2
    assert not (tmp_path / "filters.txt").exists()
    assert script.main([str(tmp_path / "filters.png")]) == 0
    assert (tmp_path / "filters.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert out.count("% of the variance") == 8
