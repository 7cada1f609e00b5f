"""Training on several processes or machines with MXNet's own parameter-server kvstore.

``--kvstore device`` or ``local`` sums gradients over the GPUs of one process. ``dist_sync`` and
``dist_device_sync`` connect to the scheduler and servers that ``python -m gluon_resnet.launch``
starts; every worker then trains on its own shard of each epoch and pushes its gradients; the
servers add them up and take the SGD step, and every worker pulls the same new weights.

Batch size and learning rate: ``--batch-size`` is per worker, so one step sees
``batch_size * num_workers`` images (the global batch), and ``--lr`` applies to the mean gradient
over that global batch. N workers at ``--batch-size B/N`` thus follow the same recipe as one
process at ``--batch-size B`` (they even take the same batches, see ``shard_indices``); scale
``--lr`` yourself if you grow the global batch. Every worker evaluates the whole test set.
"""
import hashlib
import os
from collections import namedtuple

import mxnet as mx
import numpy as np
from mxnet import gluon

from .data import ArrayLoader
from .errors import UserError

KVSTORES = ("device", "local", "dist_sync", "dist_device_sync")


class Cluster(namedtuple("Cluster", "kvstore rank num_workers")):
    """Where this process stands: the kvstore (a name or an ``mx.kv.KVStore``), its rank, the worker count."""

    @property
    def distributed(self):
        return self.num_workers > 1 or not isinstance(self.kvstore, str)

    @property
    def is_writer(self):
        """Only rank 0 writes checkpoints, metrics and plots, so workers never race on a file."""
        return self.rank == 0

    def tag(self, log=print):
        """``log`` with every line prefixed ``[worker r/n]`` when there is more than one worker.

        >>> Cluster("dist_sync", 1, 2).tag(lambda line: line)("epoch 1")
        '[worker 1/2] epoch 1'
        """
        if self.num_workers == 1:
            return log
        prefix = f"[worker {self.rank}/{self.num_workers}] "
        return lambda line, *args, **kwargs: log(prefix + str(line), *args, **kwargs)


def connect(kvstore="device", environ=None):
    """Create the kvstore named by ``--kvstore``; a dist kvstore joins the launcher's scheduler.

    >>> connect("device")
    Cluster(kvstore='device', rank=0, num_workers=1)
    """
    environ = os.environ if environ is None else environ
    if kvstore not in KVSTORES:
        raise UserError(f"unknown --kvstore {kvstore!r}: choose one of {', '.join(KVSTORES)}")
    if not kvstore.startswith("dist"):
        return Cluster(kvstore, 0, 1)
    if environ.get("DMLC_ROLE") != "worker" or not environ.get("DMLC_PS_ROOT_URI"):
        raise UserError(f"--kvstore {kvstore} needs the scheduler and servers of the launcher: run "
                        "python -m gluon_resnet.launch --workers N -- <these train flags>")
    kv = mx.kv.create(kvstore)  # blocks until every worker and server has joined
    return Cluster(kv, kv.rank, kv.num_workers)


def make_trainer(params, optimizer, optimizer_params, cluster):
    """A ``gluon.Trainer`` on the cluster's kvstore whose steps average over the global batch.

    The servers sum the workers' gradients; ``rescale_grad = 1/num_workers`` turns that sum into
    the mean, so ``trainer.step(per_worker_batch)`` divides by the global batch size. On a dist
    kvstore the servers also run the optimizer and every worker pulls the same new weights
    (``update_on_kvstore=True``): that keeps the workers bit-for-bit identical, which updating
    on each worker did not always do (MXNet 1.9.1, loopback: 1 run in 6 drifted apart). The
    optimizer runs on the servers, so change its learning rate with an ``lr_scheduler`` in
    ``optimizer_params``; ``trainer.set_learning_rate`` would only reach this worker's copy.
    """
    options = dict(optimizer_params)
    options["rescale_grad"] = options.get("rescale_grad", 1.0) / cluster.num_workers
    return gluon.Trainer(params, optimizer, options, kvstore=cluster.kvstore,
                         update_on_kvstore=None if isinstance(cluster.kvstore, str) else True)


# ---------------------------------------------------------------------------- data shards

def shard_indices(order, rank, num_workers, batch_size):
    """This worker's part of an epoch's order, cut so that step ``b`` of all workers together
    covers ``order[b*N*B:(b+1)*N*B]``: the very batch one process at ``--batch-size N*B`` takes.

    The tail that does not fill a global batch is left out, so every worker takes the same steps.

    >>> shard_indices(np.arange(10), 1, 2, 2).tolist()
    [2, 3, 6, 7]
    """
    order = np.asarray(order)
    step = num_workers * batch_size
    usable = len(order) // step * step
    return order[:usable].reshape(-1, num_workers, batch_size)[:, rank].reshape(-1)


class ShardedLoader(ArrayLoader):
    """An ``ArrayLoader`` that yields only this worker's shard of each (shuffled) epoch.

    All workers draw the same permutation from ``(seed, epoch)`` and take disjoint, equal parts
    of it, so N workers at batch B see the batches one process sees at batch N*B, and every worker
    takes the same number of steps (a synchronous kvstore waits for all of them at every step).
    """

    def __init__(self, loader, rank, num_workers):
        # Every setting of the loader carries over (augment, mix, early, finish and any added
        # later), not a list of them that a new ArrayLoader argument could silently miss.
        vars(self).update(vars(loader))
        self.drop_last = True
        self.rank, self.num_workers = rank, num_workers
        if len(self) == 0:
            raise UserError(f"{len(self.images)} training images do not fill one step of "
                            f"{num_workers} workers x --batch-size {self.batch_size}: "
                            "lower --batch-size or use more data")

    def __len__(self):
        return len(self.images) // (self.num_workers * self.batch_size)

    def order(self, epoch):
        return shard_indices(super().order(epoch), self.rank, self.num_workers, self.batch_size)


def shard(loader, cluster):
    """The cluster's share of ``loader`` (the loader itself without a dist kvstore).

    Even a single dist worker gets whole batches only: the servers' optimizer keeps the
    gradient scale of the first step, so every step must see the same batch size.
    """
    if not cluster.distributed:
        return loader
    return ShardedLoader(loader, cluster.rank, cluster.num_workers)


# ---------------------------------------------------------------------------- checking workers agree

def param_digest(net):
    """A short sha1 of the trainable parameters' values: equal digests mean equal weights.

    BatchNorm's running mean and variance are not trained by gradients, so they are left out:
    each worker keeps its own, measured on its own shard (rank 0's are the ones saved).
    """
    sha = hashlib.sha1()
    for param in net.collect_params().values():  # the network's own order, the same on every worker
        if param.grad_req != "null":
            sha.update(np.ascontiguousarray(param.data().asnumpy()).tobytes())
    return sha.hexdigest()[:16]
