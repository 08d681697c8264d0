"""One rank of tests/test_distributed.py, launched by ``torchrun --nproc_per_node 2`` (gloo on CPU).

``python _torchrun_worker.py OUT_DIR <lavis_latent.train arguments>``: builds the run through the training entry
point (``lavis_latent.train.build_run``: device-aware process group, seeds, task, datasets, model) and its runner
(DDP, distributed sampler), then

1. saves rank 0's initial weights and each rank's first training batch, runs the model's (ALBEF's, BLIP's) forward
   on that batch and backpropagates the latent contrastive terms computed with ``gather=True`` (``loss_inmodal``)
   plus the per-sample ``loss_bridge``, averages the gradients over the ranks as DDP does and saves losses and
   gradients (and whether BLIP's ``negative_all_rank`` was in effect);
2. trains with ``runner.train()`` (DDP, all loss terms) and saves each rank's final weights.
"""
import os
import sys

import torch
import torch.distributed as dist
from lavis.datasets.data_utils import prepare_sample

from lavis_latent import train


def main():
    out, argv = sys.argv[1], sys.argv[2:]
    torch.set_num_threads(1)
    cfg, job_id, task, datasets, model = train.build_run(train.parse_args(argv))
    runner = train.get_runner_class(cfg)(cfg=cfg, job_id=job_id, task=task, model=model, datasets=datasets)
    rank, world = dist.get_rank(), dist.get_world_size()
    ddp = runner.model  # DDP: every rank now holds rank 0's weights
    model = runner.unwrap_dist_model(ddp)
    if rank == 0:
        torch.save(model.state_dict(), os.path.join(out, "init.pt"))

    batch = next(runner.train_loader)
    torch.save(batch, os.path.join(out, f"batch{rank}.pt"))
    samples = prepare_sample(dict(batch), cuda_enabled=False)
    samples.update({"epoch": 0, "iters": 0, "num_iters_per_epoch": len(runner.train_loader)})
    model.eval()
    output = model(samples)
    (output["loss_inmodal"] + output["loss_bridge"]).backward()
    grads = {}
    for name, p in model.named_parameters():
        if p.grad is not None:
            g = p.grad.detach().clone()
            dist.all_reduce(g)
            grads[name] = g / world
    torch.save({"rank": rank, "world": type(ddp).__name__, "backend": dist.get_backend(),
                "negative_all_rank": bool(getattr(model, "negative_all_rank", False)),
                "loss_inmodal": output["loss_inmodal"].detach(), "loss_bridge": output["loss_bridge"].detach(),
                "grads": grads}, os.path.join(out, f"check{rank}.pt"))
    model.zero_grad(set_to_none=True)
    model.train()

    runner.train()
    torch.save(model.state_dict(), os.path.join(out, f"final{rank}.pt"))
    torch.save({"output_dir": str(runner.output_dir)}, os.path.join(out, f"run{rank}.pt"))


if __name__ == "__main__":
    main()
