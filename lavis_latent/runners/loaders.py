"""A resumable replacement for LAVIS's training ``IterLoader``.

LAVIS 1.0.2's ``IterLoader`` (``lavis/datasets/datasets/dataloader_utils.py``) turns the training ``DataLoader`` into
an endless iterator; its data order depends on the global torch RNG at the moment each epoch's iterator is created
(``RandomSampler`` draws its seed there; ``DistributedSampler`` restarts at epoch 0 in a resumed run), it cannot
start in the middle of an epoch, and it sleeps 2 s at every epoch boundary. :class:`ResumableIterLoader` has the
same interface, but each epoch's order is a function of ``(run.seed, epoch)`` only, no global RNG is consumed when
an epoch starts, and :meth:`ResumableIterLoader.begin_epoch` can skip the batches a checkpoint already trained on
(without loading them). With ``num_workers: 0`` a resumed run then sees exactly the batches and augmentations of an
uninterrupted one; with workers, the order is exact but random augmentations inside the workers are not.
"""
import torch
from torch.utils.data import DataLoader, RandomSampler

_ORDER, _WORKERS = 0x5EED0, 0x5EED1


def _seed(*parts):
    """A 63-bit seed from integers (deterministic across processes, unlike ``hash`` of strings)."""
    value = 0
    for p in parts:
        value = (value * 1_000_003 + int(p)) % (2**63 - 1)
    return value


class ResumableIterLoader:
    """Endless iterator over a training ``DataLoader`` (optionally wrapped in LAVIS's ``PrefetchLoader``) with a
    seeded, per-epoch data order and mid-epoch start.

    Args:
        dataloader: the ``DataLoader`` LAVIS built (or its ``PrefetchLoader``).
        use_distributed: accepted for ``IterLoader`` compatibility (a ``DistributedSampler`` is detected directly).
        seed: ``run.seed``; the shuffle order of epoch ``e`` depends on ``(seed, e)`` only (``DistributedSampler``
            keeps its own seed and gets ``set_epoch(e)``), the DataLoader worker seeds on ``(seed, rank, e)``.
        rank: this process's rank (worker seeds differ per rank).
    """

    def __init__(self, dataloader, use_distributed=False, seed=0, rank=0):
        self._dataloader = dataloader
        self._use_distributed = use_distributed
        self._seed, self._rank = int(seed), int(rank)
        self._epoch, self._position = 0, 0
        self.iter_loader = None

    @property
    def epoch(self):
        """The data epoch being iterated."""
        return self._epoch

    @property
    def position(self):
        """Batches of the current epoch consumed so far (skipped ones included)."""
        return self._position

    def _base_loader(self):
        return getattr(self._dataloader, "loader", self._dataloader)  # PrefetchLoader keeps it in .loader

    def begin_epoch(self, epoch, skip=0):
        """Start data epoch ``epoch``, leaving out its first ``skip`` batches (those a checkpoint has seen)."""
        base = self._base_loader()
        sampler = base.sampler
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        elif isinstance(sampler, RandomSampler):
            sampler.generator = torch.Generator().manual_seed(_seed(_ORDER, self._seed, epoch))
        # the workers' base seed comes from this generator instead of the global RNG
        base.generator = torch.Generator().manual_seed(_seed(_WORKERS, self._seed, self._rank, epoch))
        if skip > 0:
            batches = list(base.batch_sampler)[skip:]
            kwargs = dict(
                batch_sampler=batches, num_workers=base.num_workers, collate_fn=base.collate_fn,
                pin_memory=base.pin_memory, timeout=base.timeout, worker_init_fn=base.worker_init_fn,
                multiprocessing_context=base.multiprocessing_context, generator=base.generator,
            )
            if base.num_workers > 0:
                kwargs["prefetch_factor"] = base.prefetch_factor
            loader = DataLoader(base.dataset, **kwargs)
            if base is not self._dataloader:
                loader = type(self._dataloader)(loader)  # re-wrap in PrefetchLoader
            self.iter_loader = iter(loader)
        else:
            self.iter_loader = iter(self._dataloader)
        self._epoch, self._position = epoch, skip

    def __next__(self):
        if self.iter_loader is None:
            self.begin_epoch(self._epoch)
        try:
            data = next(self.iter_loader)
        except StopIteration:
            self.begin_epoch(self._epoch + 1)
            data = next(self.iter_loader)
        self._position += 1
        return data

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._dataloader)
