"""Evaluate a trained network: predictions, accuracy per class, confusion matrix."""
import numpy as np


def predict(net, data_iter, ctx):
    """True and predicted labels over ``data_iter`` as two int arrays."""
    true, pred = [], []
    for X, y in data_iter:
        true.append(y.asnumpy())
        pred.append(net(X.as_in_ctx(ctx)).argmax(axis=1).asnumpy())
    return np.concatenate(true).astype(np.int64), np.concatenate(pred).astype(np.int64)


def confusion_matrix(y_true, y_pred, num_classes=10):
    """Counts: row = true class, column = predicted class.

    >>> confusion_matrix([0, 1, 1], [0, 1, 0], num_classes=2).tolist()
    [[1, 0], [1, 1]]
    """
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def per_class_accuracy(matrix):
    """Fraction of each true class predicted correctly (the diagonal over row sums)."""
    matrix = np.asarray(matrix)
    return np.diag(matrix) / np.maximum(matrix.sum(axis=1), 1)
