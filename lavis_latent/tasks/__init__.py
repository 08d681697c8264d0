"""LAVIS tasks of the plugin (registered on import)."""
from lavis_latent.tasks.classification import LinearProbeTask, ZeroShotClassificationTask
from lavis_latent.tasks.downstream import LatentClassificationTask, LatentVQATask, TextAssignmentTask
from lavis_latent.tasks.pretrain import LatentPretrainTask
from lavis_latent.tasks.retrieval import LatentRetrievalTask
from lavis_latent.tasks.train_loop import LossTermsMixin, NonFiniteLossError

__all__ = ["LatentPretrainTask", "LatentRetrievalTask", "LatentVQATask", "LatentClassificationTask",
           "TextAssignmentTask", "LossTermsMixin", "NonFiniteLossError", "ZeroShotClassificationTask",
           "LinearProbeTask"]
