"""An exponential moving average (EMA) of a network's weights, the copy that is evaluated.

Late in training, SGD's weights jitter around a good point; their running average sits closer to
it and often scores a little higher on the test set. ``WeightAverage`` keeps that average beside the
net (training never sees it) and swaps it in only while the net is evaluated::

    ema = WeightAverage(net, decay=0.99, every=5)
    ...after each trainer.step():  ema.update(step)
    with ema.applied():            accuracy(net, test_iter)

BatchNorm's running mean and variance are averaged too, so the averaged weights come with
statistics that match them. MXNet 1.9's Gluon has no such helper, hence this one.
"""
import contextlib


class WeightAverage:
    """The running average of ``net``'s parameters, updated every ``every`` optimizer steps.

    Early updates use a smaller decay, ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates
    (TensorFlow's ``num_updates`` rule), so the average forgets the random initial weights within
    a few dozen updates instead of carrying them for ``1 / (1 - decay)`` updates.
    """

    def __init__(self, net, decay=0.99, every=5):
        if not 0 < decay < 1 or every < 1:
            raise ValueError(f"decay must lie in (0, 1) and every be >= 1, got {decay}, {every}")
        self.params = list(net.collect_params().values())
        self.decay, self.every = decay, every
        self.updates = 0
        self.average = None

    def update(self, step):
        """Fold the current weights into the average, on every ``every``-th ``step`` (0-based)."""
        if step % self.every:
            return
        current = [p.data() for p in self.params]
        if self.average is None:
            self.average = [c.copy() for c in current]
        else:
            d = min(self.decay, (1 + self.updates) / (10 + self.updates))
            for avg, cur in zip(self.average, current):
                avg[:] = d * avg + (1 - d) * cur
        self.updates += 1

    @contextlib.contextmanager
    def applied(self):
        """Inside the block the net holds the averaged weights; after it, its own again."""
        if self.average is None:  # nothing averaged yet: evaluate the weights as they are
            yield
            return
        own = [p.data().copy() for p in self.params]
        for p, avg in zip(self.params, self.average):
            p.set_data(avg)
        try:
            yield
        finally:
            for p, mine in zip(self.params, own):
                p.set_data(mine)
