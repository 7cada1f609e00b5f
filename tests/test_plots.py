import numpy as np
import pytest
from matplotlib.figure import Figure

from gluon_resnet import plots
from gluon_resnet.evaluate import confusion_matrix, per_class_accuracy

HISTORY = [{"epoch": e, "train_loss": 1 / e, "train_acc": 0.5 + e / 10, "test_acc": 0.4 + e / 10}
           for e in (1, 2, 3)]


def test_history_plot_draws_the_three_curves():
    fig = plots.plot_history(HISTORY, title="demo")
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["train loss", "train acc", "test acc"]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "loss / accuracy"
    np.testing.assert_allclose(ax.get_lines()[2].get_ydata(), [0.5, 0.6, 0.7])


def test_epochs_without_a_test_score_leave_gaps_and_the_scored_ones_are_marked():
    rows = [dict(row, test_acc=None) if row["epoch"] == 2 else row for row in HISTORY]  # --test-every 2
    train, test = plots.plot_history(rows).axes[0].get_lines()[1:]
    assert list(test.get_xdata()) == [1, 3] and list(test.get_ydata()) == [0.5, 0.7]
    assert test.get_marker() == "o" and train.get_marker() in ("None", None, "")
    assert len(train.get_xdata()) == 3


def test_save_figure_writes_a_png_atomically(tmp_path):
    path = plots.save_figure(plots.plot_history(HISTORY), tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temporary left behind


def test_confusion_plot_and_image_grid(tmp_path):
    matrix = confusion_matrix([0, 1, 2, 2], [0, 2, 2, 2], num_classes=3)
    np.testing.assert_allclose(per_class_accuracy(matrix), [1.0, 0.0, 1.0])
    fig = plots.plot_confusion(matrix, ["a", "b", "c"])
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["1", "0", "0", "0", "0", "1", "0", "0", "2"]
    grid = plots.show_images(np.zeros((10, 1, 28, 28)), titles=[str(i) for i in range(10)], ncols=4)
    assert isinstance(grid, Figure) and len(grid.axes) == 10
    assert grid.axes[9].get_title() == "9"
    filters = plots.show_images(np.array([[[0.5, -2.0], [1.0, 0.0]], [[0.1, 0.3], [0.2, 0.2]]]), symmetric=True)
    assert [ax.images[0].get_clim() for ax in filters.axes] == [(-2.0, 2.0), (-0.3, 0.3)]  # 0 is mid-colour
    assert plots.show_images(np.array([[[0.1, 0.3], [0.2, 0.2]]])).axes[0].images[0].get_clim() == (0.1, 0.3)


def test_series_plot_labels_each_curve():
    fig = plots.plot_series({"plain-20": [0.5, 0.4], "resnet-20": [0.45, 0.3]}, "epoch", "training error")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "training error"
    assert [line.get_label() for line in ax.get_lines()] == ["plain-20", "resnet-20"]


def test_saved_figure_gets_the_usual_file_mode(tmp_path):
    import os
    umask = os.umask(0)
    os.umask(umask)
    path = plots.save_figure(plots.plot_history(HISTORY), tmp_path / "c.png")
    assert (path.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_band_draws_the_mean_and_shades_min_to_max():
    fig = Figure()
    ax = fig.add_subplot()
    line = plots.plot_band(ax, [[0.5, 0.3, 0.2], [0.7, 0.5, 0.2]], "--", label="plain-20")
    np.testing.assert_allclose(line.get_ydata(), [0.6, 0.4, 0.2])
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == 0.2 and band[:, 1].max() == 0.7
    ticks = ax.get_xticks()
    assert np.allclose(ticks, np.round(ticks))  # whole epochs only


def test_band_takes_positions_such_as_step_counts_and_refuses_a_mismatch():
    ax = Figure().add_subplot()
    line = plots.plot_band(ax, [[0.5, 0.3], [0.7, 0.5]], x=[469, 938])
    assert list(line.get_xdata()) == [469, 938]
    with pytest.raises(ValueError, match="3 positions for curves of 2 points"):
        plots.plot_band(ax, [[0.5, 0.3]], x=[1, 2, 3])


def test_history_plot_ticks_whole_epochs():
    ax = plots.plot_history(HISTORY[:2]).axes[0]
    assert all(float(t).is_integer() for t in ax.get_xticks())


def test_log_axis_ticks_label_a_narrow_range_readably():
    # Fig. 7's responses span about 0.8-1.05: matplotlib's log axis labels only 0.8, 0.9 and 1
    fig = Figure()
    ax = fig.add_subplot()
    values = [0.81, 0.87, 0.95, 1.02, 1.04]
    ax.plot(range(5), values)
    ticks = plots.log_axis_ticks(ax, values)
    fig.canvas.draw()
    low, high = ax.get_ylim()
    shown = [t for t in ax.get_yticks() if low <= t <= high]
    labels = [label.get_text() for label in ax.get_yticklabels() if label.get_text()]
    assert len(shown) >= 5 and shown == ticks and low <= min(values) and high >= max(values)
    assert len(set(labels)) == len(labels) >= 5 and all(float(x) == t for x, t in zip(labels, ticks))
    assert ax.get_yscale() == "log" and not ax.yaxis.get_minor_locator().tick_values(low, high)


def test_log_axis_ticks_use_powers_of_ten_over_a_wide_range():
    fig = Figure()
    ax = fig.add_subplot()
    ticks = plots.log_axis_ticks(ax, [0.5, 3.0, 40.0, 700.0])
    assert ticks == [1.0, 10.0, 100.0]  # 0.1 and 1000 fall outside the data
    fig.canvas.draw()
    assert [label.get_text() for label in ax.get_yticklabels()] == ["1", "10", "100"]
