import numpy as np
import pytest

import mxnet as mx

from gluon_resnet import evaluate, train
from gluon_resnet.errors import UserError
from gluon_resnet.onnx_export import load_exported
from gluon_resnet.run import load_model
from gluon_resnet.data import ArrayLoader, balanced_subset, load_fashion_mnist, resize_images


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval") / "run"
    assert train.main(["--subset", "200", "--batch-size", "40", "--resize", "16", "--epochs", "1",
                       "--quiet", "--out", str(folder)]) == 0
    return folder


def test_evaluate_reports_accuracy_and_writes_the_figures(run_dir, capsys):
    assert evaluate.main([str(run_dir), "--subset", "100", "--num-images", "8"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{run_dir}: epoch 1, test acc ") and out[0].endswith("on 100 test images")
    assert [line.split()[0] for line in out[1:11]] == ["t-shirt", "trouser", "pullover", "dress", "coat",
                                                        "sandal", "shirt", "sneaker", "bag", "ankle"]
    for name in ("confusion.png", "predictions.png"):
        assert (run_dir / name).read_bytes()[:4] == b"\x89PNG"


def test_printed_accuracy_is_the_reloaded_models(run_dir):
    result = evaluate.evaluate_run(run_dir, subset=100)
    net = load_model(run_dir)  # the one-line reload
    data = load_fashion_mnist()
    images, labels = balanced_subset(data.test_images, data.test_labels, 100)
    y_true, y_pred = evaluate.predict(net, ArrayLoader(resize_images(images, 16), labels, 50), mx.cpu())
    assert result["test_acc"] == pytest.approx((y_true == y_pred).mean())
    matrix = evaluate.confusion_matrix(y_true, y_pred)
    assert matrix.sum() == 100 and result["per_class"]["trouser"] == pytest.approx(matrix[1, 1] / 10)


def test_export_gives_the_same_predictions(run_dir):
    result = evaluate.evaluate_run(run_dir, subset=50, export=True)
    prefix = run_dir / "model"
    assert [p.name for p in result["exported"]] == ["model-symbol.json", "model-0000.params"]
    X = mx.np.array(np.random.default_rng(0).random((6, 1, 16, 16), dtype=np.float32))
    np.testing.assert_allclose(load_exported(prefix)(X).asnumpy(),
                               load_model(run_dir)(X).asnumpy(), rtol=1e-5, atol=1e-5)


def test_evaluate_without_a_run_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {tmp_path} holds no checkpoint")


def test_tta_adds_the_scores_of_the_mirror_images(run_dir):
    assert evaluate.evaluate_run(run_dir, subset=100)["tta"] is False  # the run was trained without --tta
    result = evaluate.evaluate_run(run_dir, subset=100, tta=True)
    net = load_model(run_dir)
    data = load_fashion_mnist()
    images, labels = balanced_subset(data.test_images, data.test_labels, 100)
    X, _ = ArrayLoader(resize_images(images, 16), labels, 100).numpy_batch(np.arange(100))
    both = net(mx.np.array(X)).asnumpy() + net(mx.np.array(X[..., ::-1].copy())).asnumpy()
    assert result["tta"] is True
    assert result["test_acc"] == pytest.approx((both.argmax(axis=1) == labels).mean())


def test_shifted_copies_are_scored_when_asked_and_as_the_run_did_otherwise(run_dir):
    assert evaluate.evaluate_run(run_dir, subset=100)["tta_shifts"] == 0  # the run had none
    result = evaluate.evaluate_run(run_dir, subset=100, tta=False, tta_shifts=1)
    net = load_model(run_dir)
    data = load_fashion_mnist()
    images, labels = balanced_subset(data.test_images, data.test_labels, 100)
    X, _ = ArrayLoader(resize_images(images, 16), labels, 100).numpy_batch(np.arange(100))
    padded = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    views = [X, padded[..., :16, :16], padded[..., 2:, 2:]]  # as is, moved down-right, moved up-left
    total = sum(net(mx.np.array(v.copy())).asnumpy() for v in views)
    assert result["tta_shifts"] == 1
    assert result["test_acc"] == pytest.approx((total.argmax(axis=1) == labels).mean())


def test_four_shifted_copies_are_the_moves_up_down_left_and_right(run_dir):
    result = evaluate.evaluate_run(run_dir, subset=100, tta=False, tta_shifts=1, tta_copies=4)
    net = load_model(run_dir)
    data = load_fashion_mnist()
    images, labels = balanced_subset(data.test_images, data.test_labels, 100)
    X, _ = ArrayLoader(resize_images(images, 16), labels, 100).numpy_batch(np.arange(100))
    padded = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    views = [X, padded[..., :16, 1:17], padded[..., 2:, 1:17], padded[..., 1:17, :16], padded[..., 1:17, 2:]]
    total = sum(net(mx.np.array(v.copy())).asnumpy() for v in views)
    assert (result["tta_shifts"], result["tta_copies"]) == (1, 4)
    assert result["test_acc"] == pytest.approx((total.argmax(axis=1) == labels).mean())


@pytest.fixture(scope="module")
def second_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval") / "seed1"
    assert train.main(["--subset", "200", "--batch-size", "40", "--resize", "16", "--epochs", "1",
                       "--seed", "1", "--tta", "--quiet", "--out", str(folder)]) == 0
    return folder


def test_ensemble_of_two_runs_averages_their_probabilities(run_dir, second_run, capsys):
    assert evaluate.main([str(run_dir), str(second_run), "--subset", "100"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{run_dir}: epoch 1, test acc ")
    assert out[2].startswith(f"{second_run}: epoch 1, test acc ") and "mirror images" in out[2]
    assert out[4].startswith("ensemble of 2 runs") and len(out) == 15  # + its ten classes
    printed = float(out[4].split("test acc ")[1].split()[0])
    data = load_fashion_mnist()
    images, labels = balanced_subset(data.test_images, data.test_labels, 100)
    X, _ = ArrayLoader(resize_images(images, 16), labels, 100).numpy_batch(np.arange(100))
    first = load_model(run_dir)(mx.np.array(X))
    mirrored = [load_model(second_run)(mx.np.array(v.copy())) for v in (X, X[..., ::-1])]
    mean = (mx.npx.softmax(first) + mx.npx.softmax((mirrored[0] + mirrored[1]) / 2)).asnumpy() / 2
    assert printed == pytest.approx((mean.argmax(axis=1) == labels).mean(), abs=5e-5)


def test_ensemble_labels_need_the_same_test_images():
    with pytest.raises(UserError, match="different test sets"):
        evaluate.ensemble_labels([np.ones((4, 10)), np.ones((5, 10))])


def test_a_bad_folder_among_several_stops_before_any_figure(run_dir, tmp_path, capsys):
    (run_dir / "confusion.png").unlink(missing_ok=True)
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([str(run_dir), str(tmp_path / "missing")])
    assert exit_info.value.code == 2 and capsys.readouterr().err.count("\n") == 1
    assert not (run_dir / "confusion.png").exists()


def test_shift_copies_without_shifts_are_one_line_and_write_nothing(run_dir, capsys):
    (run_dir / "confusion.png").unlink(missing_ok=True)
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main([str(run_dir), "--tta-copies", "4"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: --tta-copies 4 scores shifted copies: give --tta-shifts S as well")
    assert not (run_dir / "confusion.png").exists()
