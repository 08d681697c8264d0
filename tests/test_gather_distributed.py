"""gather=True across 2 CPU processes (gloo) reproduces the single-process loss and gradients on the global batch."""
import datetime
import os
import pathlib
import sys
import types

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

_WORKER_ENV = "LAVIS_LATENT_TEST_DIST_WORKER"
if os.environ.get(_WORKER_ENV) == "1" and "lavis_latent" not in sys.modules:
    # Spawned worker: bind a bare `lavis_latent` package so that importing the pure-torch regularizers does not
    # run lavis_latent/__init__.py (which imports LAVIS, ~10 s per process on 2 cores). The workers also check
    # that nothing from LAVIS got imported.
    _pkg = types.ModuleType("lavis_latent")
    _pkg.__path__ = [str(pathlib.Path(__file__).resolve().parents[1] / "lavis_latent")]
    sys.modules["lavis_latent"] = _pkg

from lavis_latent.regularizers import (FeatureSeparation, LatentStructure, contrastive_loss,  # noqa: E402
                                       gather_features)

WORLD, N, D = 2, 3, 5
#: sample ids of the global batch: id 1 has rows on both ranks (a positive that only the gather can see)
GLOBAL_IDS = torch.tensor([0, 0, 1, 1, 1, 2])

#: losses computed both on 2 ranks with gather=True and on one process on the global batch
#: (fn(xs, ids, gather) -> scalar), for test_gathered_losses_match_global_batch
GATHERED_CASES = {
    "inmodal_ids": lambda xs, ids, gather: LatentStructure.from_config({"inmodal": {}})(
        *xs, 0.3, gather=gather, sample_ids=ids)["loss_inmodal"],
    "sep_con_ids": lambda xs, ids, gather: FeatureSeparation(1, 1, D).loss_terms(
        xs[0], xs[1], xs[0], xs[1], xs[2], xs[3], 0.3, gather=gather, sample_ids=ids)["con"],
    "gc_paper": lambda xs, ids, gather: LatentStructure.from_config(
        {"geometric": {"normalization": "paper", "gather": True}})(*xs, gather=gather)["loss_geo"],
    "gc_mean": lambda xs, ids, gather: LatentStructure.from_config(
        {"geometric": {"normalization": "mean", "gather": True}})(*xs, gather=gather)["loss_geo"],
}


def global_batch():
    g = torch.Generator().manual_seed(1234)
    return [F.normalize(torch.randn(WORLD * N, D, generator=g, dtype=torch.float64), dim=1) for _ in range(4)]


def _worker(rank, init_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD,
                            timeout=datetime.timedelta(seconds=60))
    try:
        sl = slice(rank * N, (rank + 1) * N)
        results = {}
        for with_aug in (False, True):
            xs = [x[sl].clone().requires_grad_() for x in global_batch()]
            tau = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
            args = xs if with_aug else xs[:2]
            loss = contrastive_loss(*args, temperature=tau, gather=True)
            loss.backward()
            results[with_aug] = {"loss": loss.detach(), "tau_grad": tau.grad.clone(),
                                 "grads": [x.grad.clone() if x.grad is not None else None for x in xs]}
        # separation's in-modal term L^i_Con through LatentStructure(gather=True)
        xs = [x[sl].clone().requires_grad_() for x in global_batch()]
        sep = FeatureSeparation(1, 1, D)
        loss = sep.loss_terms(*xs[:2], xs[0], xs[1], xs[2], xs[3], temperature=0.3, gather=True)["con"]
        loss.backward()
        results["sep_con"] = {"loss": loss.detach(), "grads": [x.grad.clone() for x in xs]}
        # inmodal through LatentStructure
        xs = [x[sl].clone().requires_grad_() for x in global_batch()]
        loss = LatentStructure.from_config({"inmodal": {}})(*xs, 0.3, gather=True)["loss_inmodal"]
        loss.backward()
        results["inmodal"] = {"loss": loss.detach(), "grads": [x.grad.clone() for x in xs]}
        for key, fn in GATHERED_CASES.items():
            xs = [x[sl].clone().requires_grad_() for x in global_batch()]
            loss = fn(xs, GLOBAL_IDS[sl], True)
            loss.backward()
            results[key] = {"loss": loss.detach(), "grads": [x.grad.clone() for x in xs]}
        (gathered,) = gather_features(torch.full((2, 1), float(rank)))
        results["layout"] = gathered
        results["lavis_imported"] = any(m == "lavis" or m.startswith("lavis.") for m in sys.modules)
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dist")
    os.environ[_WORKER_ENV] = "1"  # inherited by the spawned workers only (see the top of this file)
    try:
        mp.spawn(_worker, args=(str(tmp / "init"), str(tmp)), nprocs=WORLD, join=True)
    finally:
        del os.environ[_WORKER_ENV]
    return [torch.load(tmp / f"rank{r}.pt") for r in range(WORLD)]


def _single(fn, n_inputs):
    xs = [x.clone().requires_grad_() for x in global_batch()]
    tau = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    loss = fn(xs[:n_inputs], tau)
    loss.backward()
    return loss.detach(), [x.grad for x in xs], tau.grad


@pytest.mark.parametrize("with_aug", [False, True])
def test_contrastive_gather_matches_global_batch(rank_results, with_aug):
    n_in = 4 if with_aug else 2
    loss, grads, tau_grad = _single(lambda xs, tau: contrastive_loss(*xs, temperature=tau), n_in)
    res = [r[with_aug] for r in rank_results]
    # the mean of the per-rank losses (what DDP optimises) is the single-process loss on the global batch
    mean_loss = sum(r["loss"] for r in res) / WORLD
    assert torch.allclose(mean_loss, loss, atol=1e-5, rtol=0)
    assert not torch.allclose(res[0]["loss"], res[1]["loss"])  # the ranks really see different rows
    # feature gradients: rank r's local gradient, averaged as DDP averages, is the global gradient's slice
    for r, rr in enumerate(res):
        for i in range(n_in):
            assert torch.allclose(rr["grads"][i] / WORLD, grads[i][r * N:(r + 1) * N], atol=1e-5, rtol=0)
    # a parameter shared by all ranks (the temperature): DDP-averaged gradient == global gradient
    assert torch.allclose(sum(r["tau_grad"] for r in res) / WORLD, tau_grad, atol=1e-5, rtol=0)


def test_separation_and_inmodal_gather(rank_results):
    sep = FeatureSeparation(1, 1, D)
    cases = {
        "sep_con": lambda xs, tau: sep.loss_terms(xs[0], xs[1], xs[0], xs[1], xs[2], xs[3], 0.3)["con"],
        "inmodal": lambda xs, tau: LatentStructure.from_config({"inmodal": {}})(*xs, 0.3)["loss_inmodal"],
    }
    for key, fn in cases.items():
        loss, grads, _ = _single(fn, 4)
        res = [r[key] for r in rank_results]
        assert torch.allclose(sum(r["loss"] for r in res) / WORLD, loss, atol=1e-5, rtol=0), key
        for r, rr in enumerate(res):
            for i in range(4):
                assert torch.allclose(rr["grads"][i] / WORLD, grads[i][r * N:(r + 1) * N], atol=1e-5, rtol=0), key


@pytest.mark.parametrize("key", list(GATHERED_CASES))
def test_gathered_losses_match_global_batch(rank_results, key):
    """Multi-positive in-modal terms (ids shared across ranks) and geometric consistency over the gathered batch:
    the mean of the per-rank losses and the DDP-averaged gradients are the single-process ones."""
    xs = [x.clone().requires_grad_() for x in global_batch()]
    loss = GATHERED_CASES[key](xs, GLOBAL_IDS, False)
    loss.backward()
    res = [r[key] for r in rank_results]
    assert torch.allclose(sum(r["loss"] for r in res) / WORLD, loss.detach(), atol=1e-6, rtol=0)
    for r, rr in enumerate(res):
        for i in range(4):
            assert torch.allclose(rr["grads"][i] / WORLD, xs[i].grad[r * N:(r + 1) * N], atol=1e-6, rtol=0)


def test_gather_layout(rank_results):
    for r in rank_results:
        assert torch.equal(r["layout"], torch.tensor([[0.0], [0.0], [1.0], [1.0]]))


def test_workers_ran_without_lavis(rank_results):
    # the regularizers package is pure torch: the workers imported it without LAVIS
    assert [r["lavis_imported"] for r in rank_results] == [False] * WORLD


def test_gather_without_group_is_identity():
    a, b = torch.randn(3, 2), torch.randn(3, 4)
    ga, gb = gather_features(a, b)
    assert ga is a and gb is b
