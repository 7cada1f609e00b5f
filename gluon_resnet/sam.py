"""Sharpness-aware minimisation (SAM; Foret et al., ICLR 2021): step with the gradient of a nearby worse point.

Plain SGD follows the gradient at the weights ``w``. SAM first climbs a short way uphill, to
``w + rho * g / |g|`` (``g`` the batch's gradient at ``w``), takes the gradient *there*, walks back
to ``w`` and lets the optimizer step with that second gradient. Weights whose neighbourhood is
uniformly low (a flat minimum) are what it settles in, and flat minima tend to generalise better.
Each step costs a second forward and backward pass::

    sam = SharpnessAware(net, rho=0.05)
    with autograd.record(): loss = L(net(X), y)
    loss.backward()
    with sam.ascended():                       # the net now holds w + e
        with autograd.record(): loss2 = L(net(X), y)
        loss2.backward()                       # the gradients are now those at w + e
    trainer.step(batch_size)                   # applied to w, which ascended() put back

With several devices each climbs along its own part of the batch (the paper's per-accelerator
"m-sharpness"). MXNet 1.9 ships no SAM, hence this module.
"""
import contextlib

from mxnet import np


class SharpnessAware:
    """Moves ``net``'s trainable weights to the worst nearby point (radius ``rho``) and back."""

    def __init__(self, net, rho=0.05):
        if rho <= 0:
            raise ValueError(f"rho must be > 0, got {rho}")
        self.params = [p for p in net.collect_params().values() if p.grad_req != "null"]
        self.rho = rho

    def _steps(self):
        """Per device: the step ``rho * g / |g|`` for each parameter, from the gradients now stored."""
        steps = []
        for grads in zip(*(p.list_grad() for p in self.params)):  # one device's gradients
            norm = np.sqrt(sum((g * g).sum() for g in grads))
            scale = self.rho / (norm + 1e-12)
            steps.append([g * scale for g in grads])
        return steps

    @contextlib.contextmanager
    def ascended(self):
        """Inside the block the net holds ``w + e``; after it, ``w`` again, bit for bit.

        BatchNorm's running statistics are left to the passes: MXNet updates them in the backward
        pass, so the pass inside the block updates them as the first one did, as in most SAM code.
        (Restoring them as well was tried and ruined them: in a graph hybridized with ``static_alloc``,
        a copy of the first BatchNorm's statistics taken right after a backward pass still held the
        values from before it.)"""
        steps = self._steps()
        own = [[w.copy() for w in p.list_data()] for p in self.params]
        for device, step in enumerate(steps):
            for p, e in zip(self.params, step):
                p.list_data()[device][:] += e
        try:
            yield
        finally:
            for p, mine in zip(self.params, own):
                for w, saved in zip(p.list_data(), mine):
                    w[:] = saved
