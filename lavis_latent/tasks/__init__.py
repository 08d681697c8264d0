"""LAVIS tasks of the plugin (registered on import)."""
from lavis_latent.tasks.downstream import LatentClassificationTask, LatentVQATask, TextAssignmentTask
from lavis_latent.tasks.linear_probe import LinearProbeTask
from lavis_latent.tasks.pretrain import LatentPretrainTask
from lavis_latent.tasks.retrieval import LatentRetrievalTask
from lavis_latent.tasks.train_loop import LossTermsMixin, NonFiniteLossError
from lavis_latent.tasks.zero_shot import ZeroShotClassificationTask

__all__ = ["LatentPretrainTask", "LatentRetrievalTask", "LatentVQATask", "LatentClassificationTask",
           "TextAssignmentTask", "LossTermsMixin", "NonFiniteLossError", "ZeroShotClassificationTask",
           "LinearProbeTask"]
