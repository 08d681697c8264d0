"""The towers of ``clip_latent`` (:mod:`lavis_latent.models.clip_latent`): a ResNet image tower and a BERT text tower.

* image: a torchvision ResNet with its ``fc`` removed (pooled features, 2048-d for ResNet-50), or ``ResNetTrunk``,
  a small ResNet of the same design (``image_encoder: resnet_custom``);
* text: a transformers ``BertModel`` without pooler, whose [CLS] hidden state is the text feature.
"""
import os

import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from transformers import BertConfig, BertModel

from lavis_latent.models.encoders import HUB_TOKENIZER, OFFLINE_HINT, WeightsUnavailableError

__all__ = ["ResNetTrunk", "build_image_encoder", "build_text_encoder", "TORCHVISION_RESNETS"]

TORCHVISION_RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


class ResNetTrunk(nn.Module):
    """torchvision's ResNet design (7x7 stem, max-pool, four stages, global average pool) at any width, no ``fc``.

    Stage ``i`` has ``layers[i]`` blocks of width ``width * 2**i`` (``block``: "basic" or "bottleneck").
    ``forward(images [N, 3, H, W]) -> [N, num_features]``, ``num_features = 8 * width * block.expansion``.
    """

    def __init__(self, layers=(1, 1, 1, 1), width=16, block="basic"):
        super().__init__()
        blocks = {"basic": BasicBlock, "bottleneck": Bottleneck}
        if block not in blocks:
            raise ValueError(f"model.vision_block must be 'basic' or 'bottleneck', got {block!r}")
        layers = [int(n) for n in layers]
        if len(layers) != 4 or min(layers) < 1 or int(width) < 1:
            raise ValueError(f"model.vision_layers must be 4 positive block counts and model.vision_width a "
                             f"positive int, got {layers} and {width!r}")
        blk, width = blocks[block], int(width)
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = width
        for i, n in enumerate(layers):
            planes, stride = width * 2 ** i, 1 if i == 0 else 2
            downsample = None
            if stride != 1 or inplanes != planes * blk.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes * blk.expansion, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes * blk.expansion),
                )
            stage = [blk(inplanes, planes, stride, downsample)]
            inplanes = planes * blk.expansion
            stage += [blk(inplanes, planes) for _ in range(1, n)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = inplanes
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        """Pooled features [N, num_features] of images [N, 3, H, W]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def build_image_encoder(cfg):
    """Return ``(encoder, width)``: an image tower mapping [N, 3, H, W] to pooled features [N, width].

    ``image_encoder``: a torchvision ResNet name (``resnet18`` ... ``resnet152``; ``fc`` replaced by ``Identity``;
    ``vision_from_pretrained: True`` loads torchvision's ``vision_weights``, default ``IMAGENET1K_V1``, from
    torch's hub cache or the network) or ``resnet_custom`` (``ResNetTrunk`` from ``vision_layers``,
    ``vision_width``, ``vision_block``; random init).

    Raises:
        WeightsUnavailableError: ImageNet weights requested but neither cached nor downloadable.
    """
    name = cfg.get("image_encoder", "resnet50")
    if name == "resnet_custom":
        if cfg.get("vision_from_pretrained", False):
            raise ValueError("model.vision_from_pretrained: True needs a torchvision ResNet (model.image_encoder: "
                             "resnet50, ...); resnet_custom has no pretrained weights")
        encoder = ResNetTrunk(layers=list(cfg.get("vision_layers", [1, 1, 1, 1])), width=cfg.get("vision_width", 16),
                              block=cfg.get("vision_block", "basic"))
        return encoder, encoder.num_features
    if name not in TORCHVISION_RESNETS:
        raise ValueError(f"model.image_encoder must be one of {', '.join(TORCHVISION_RESNETS)} or resnet_custom, "
                         f"got {name!r}")
    weights = cfg.get("vision_weights", "IMAGENET1K_V1") if cfg.get("vision_from_pretrained", True) else None
    try:
        encoder = getattr(torchvision.models, name)(weights=weights)
    except OSError as err:  # URLError is an OSError
        raise WeightsUnavailableError(
            f"Could not fetch torchvision's {name} ImageNet weights ({weights}): {err}. {OFFLINE_HINT} (torchvision "
            f"looks for them in {os.path.join(torch.hub.get_dir(), 'checkpoints')} first.) Set "
            "model.vision_from_pretrained: False to start from random weights."
        ) from err
    width = encoder.fc.in_features
    encoder.fc = nn.Identity()
    return encoder, width


def build_text_encoder(cfg, vocab_size):
    """Return a transformers ``BertModel`` without pooler (the [CLS] hidden state is the feature).

    ``text_from_pretrained: True`` loads ``text_model`` (default ``bert-base-uncased``) from the HuggingFace hub
    or its cache; otherwise random init from ``text_config`` (a ``BertConfig`` json; null = BERT-base's
    architecture). ``vocab_size`` (the tokenizer's length) overrides the config's for random init; a pretrained
    model must match it.
    """
    if cfg.get("text_from_pretrained", True):
        name = cfg.get("text_model", HUB_TOKENIZER)
        try:
            encoder = BertModel.from_pretrained(name, add_pooling_layer=False)
        except OSError as err:
            raise WeightsUnavailableError(
                f"Could not load the {name!r} text encoder weights (model.text_model): {err}. {OFFLINE_HINT} "
                "Set model.text_from_pretrained: False to start from random weights."
            ) from err
        if encoder.config.vocab_size != vocab_size:
            raise ValueError(f"model.tokenizer has {vocab_size} tokens but {name!r} has an embedding table of "
                             f"{encoder.config.vocab_size}: use the tokenizer that belongs to the text model")
        return encoder
    path = cfg.get("text_config", None)
    if path is None:
        config = BertConfig()  # transformers' defaults are bert-base-uncased's architecture
    else:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"model.text_config points at {path!r}, which does not exist")
        config = BertConfig.from_json_file(path)
    config.vocab_size = vocab_size
    return BertModel(config, add_pooling_layer=False)
