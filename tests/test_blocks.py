from mxnet import np

from gluon_resnet import Residual


def test_lesson_block_keeps_the_shape():
    blk = Residual(3)
    blk.initialize()
    assert blk(np.random.uniform(size=(4, 3, 6, 6))).shape == (4, 3, 6, 6)


def test_lesson_block_with_1x1conv_halves_and_widens():
    blk = Residual(6, use_1x1conv=True, strides=2)
    blk.initialize()
    assert blk(np.random.uniform(size=(4, 3, 6, 6))).shape == (4, 6, 3, 3)
