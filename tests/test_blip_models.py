"""BLIP through the ALBEF mixin: registration, offline tiny types, LAVIS parity, checkpoints, BLIP's ITM options."""
import copy

import pytest
import torch
from PIL import Image

import lavis_latent  # noqa: F401
from conftest import tiny_config
from lavis.common.registry import registry
from lavis.models import ModelZoo, load_model, load_model_and_preprocess
from lavis.models.blip_models.blip_pretrain import BlipPretrain
from lavis.models.blip_models.blip_retrieval import BlipRetrieval
from lavis_latent.models import LatentAlbefMixin
from lavis_latent.models.dummy_inputs import image_text_batch
from lavis_latent.models.encoders import WeightsUnavailableError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALL_REGULARIZERS = {"inmodal": {}, "separation": {}, "bridge": {}, "geometric": {}}
LAVIS_CLASS = {"blip_latent_pretrain": BlipPretrain, "blip_latent_retrieval": BlipRetrieval}
LOSSES = {"blip_latent_pretrain": {"loss", "loss_itc", "loss_itm", "loss_lm"},
          "blip_latent_retrieval": {"loss", "loss_itc", "loss_itm"}}


def batch(n=8, seed=0, paired=False, images_per_id=2):
    """A training batch of 64 px images; captions of ``images_per_id`` consecutive samples share an ``image_id``."""
    samples = image_text_batch(n, 64, seed, paired=paired)
    samples["image_id"] = torch.arange(n) // images_per_id
    return samples


def lavis_reference(name, ours, cfg):
    """LAVIS's own class with ``ours``'s modules and state (the local tokenizer instead of the hub's)."""
    class Reference(LAVIS_CLASS[name]):
        def init_tokenizer(self):
            return ours.tokenizer

    kwargs = dict(image_encoder=ours.visual_encoder, text_encoder=ours.text_encoder, queue_size=cfg.queue_size,
                  embed_dim=cfg.embed_dim, max_txt_len=cfg.max_txt_len)
    if name == "blip_latent_pretrain":
        kwargs["text_decoder"] = ours.text_decoder
    reference = Reference(**copy.deepcopy(kwargs))  # one deepcopy: the encoder-decoder tied weights stay tied
    reference.load_state_dict(ours.state_dict())
    return reference


def test_registered_in_lavis_model_zoo():
    zoo = str(ModelZoo())
    assert "blip_latent_pretrain" in zoo and "blip_latent_retrieval" in zoo
    assert set(registry.get_model_class("blip_latent_pretrain").PRETRAINED_MODEL_CONFIG_DICT) == {"base", "tiny"}
    assert set(registry.get_model_class("blip_latent_retrieval").PRETRAINED_MODEL_CONFIG_DICT) == \
        {"coco", "flickr", "tiny"}
    for name, lavis_cls in LAVIS_CLASS.items():
        cls = registry.get_model_class(name)
        assert issubclass(cls, lavis_cls) and issubclass(cls, LatentAlbefMixin)  # ALBEF's mixin, not a copy


@pytest.mark.parametrize("name", sorted(LAVIS_CLASS))
def test_tiny_loads_offline_and_trains(name):
    model, vis, txt = load_model_and_preprocess(name, "tiny")
    assert vis["eval"](Image.new("RGB", (80, 50), (200, 10, 10))).shape == (3, 64, 64)
    assert txt["eval"]("A Red  Circle!") == "a red circle"
    tok = model.tokenizer
    assert tok.convert_ids_to_tokens([tok.bos_token_id, tok.enc_token_id]) == ["[DEC]", "[ENC]"]
    assert model.text_encoder.get_input_embeddings().num_embeddings == len(tok)
    out = model(batch())
    assert {k for k in out.keys() if k.startswith("loss")} == LOSSES[name]
    out.loss.backward()
    assert not [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]


@pytest.mark.parametrize("name", sorted(LAVIS_CLASS))
def test_without_latent_block_losses_equal_lavis(name):
    cls, cfg = tiny_config(name)
    ours = cls.from_config(cfg)
    reference = lavis_reference(name, ours, cfg)
    if name == "blip_latent_pretrain":  # the LM decoder shares all but its self-attention with the encoder
        assert ours.text_decoder.bert.encoder.layer[0].output.dense.weight is \
            ours.text_encoder.encoder.layer[0].output.dense.weight
    for model in (ours, reference):
        model.train()
    samples = batch(8, seed=3)
    torch.manual_seed(7)  # ITM draws its hard negatives with torch.multinomial: the same draws for both
    out_ours = ours(dict(samples))
    torch.manual_seed(7)
    out_ref = reference(dict(samples))
    keys = {k for k in out_ref.keys() if k.startswith("loss")}
    assert keys == LOSSES[name] and {k for k in out_ours.keys() if k.startswith("loss")} == keys
    worst = max((out_ours[k] - out_ref[k]).abs().item() for k in keys)
    assert worst <= 1e-6, worst
    assert torch.equal(ours.image_queue, reference.image_queue)  # queues moved alike


@pytest.mark.parametrize("name", sorted(LAVIS_CLASS))
def test_latent_terms_are_added_to_loss(name):
    cls, cfg = tiny_config(name, latent=ALL_REGULARIZERS)
    model = cls.from_config(cfg)
    out = model(batch(8, paired=True))
    terms = sorted(LOSSES[name] - {"loss"}) + ["loss_inmodal", "loss_sep", "loss_bridge", "loss_geo"]
    assert torch.allclose(out.loss, sum(out[k] for k in terms))
    assert model.latent.spec["bridge"]["form"] == "online"  # ALBEF's default, through the shared mixin


def test_retrieval_starts_from_a_pretrain_checkpoint(tmp_path):
    pre_cls, pre_cfg = tiny_config("blip_latent_pretrain", latent={"separation": {}})
    pretrain = pre_cls.from_config(pre_cfg)
    pretrain.queue_ptr[0] = 8
    pre_state = pretrain.state_dict()
    path = tmp_path / "pretrain.pth"
    torch.save({"model": pre_state}, path)
    cls, cfg = tiny_config("blip_latent_retrieval", latent={"separation": {}}, pretrained=str(path))
    state = cls.from_config(cfg).state_dict()
    shared = [k for k in state if k in pre_state and k != "queue_ptr"]
    assert all(torch.equal(state[k], pre_state[k]) for k in shared)
    assert {k.split(".")[0] for k in shared} >= {"visual_encoder", "text_encoder", "text_encoder_m", "vision_proj",
                                                  "latent", "separation_m", "image_queue"}
    assert int(state["queue_ptr"]) == 0  # reset, as LAVIS does after loading


def test_lavis_blip_state_dict_loads_with_only_new_parameters_missing(tmp_path):
    cls, cfg = tiny_config("blip_latent_retrieval")
    lavis_model = lavis_reference("blip_latent_retrieval", cls.from_config(cfg), cfg)
    path = tmp_path / "blip_lavis.pth"
    torch.save({"model": lavis_model.state_dict()}, path)
    cls, cfg = tiny_config("blip_latent_retrieval", latent=ALL_REGULARIZERS)
    model = cls.from_config(cfg)
    msg = model.load_checkpoint(str(path))
    assert msg.unexpected_keys == []
    assert msg.missing_keys and all(k.startswith(("latent.", "separation_m.")) for k in msg.missing_keys)


def test_negative_all_rank_on_one_process_is_the_batch():
    """LAVIS's COCO recipe sets negative_all_rank: True; on one process LAVIS's gather would raise."""
    outs = {}
    for flag in (False, True):
        cls, cfg = tiny_config("blip_latent_retrieval", negative_all_rank=flag)
        torch.manual_seed(0)
        model = cls.from_config(cfg)
        assert model._negative_all_rank is flag and model.negative_all_rank is False
        torch.manual_seed(1)
        outs[flag] = model(batch(8))
    for key in LOSSES["blip_latent_retrieval"]:
        assert torch.equal(outs[False][key], outs[True][key]), key


@pytest.mark.parametrize("name, samples", [
    ("blip_latent_pretrain", batch(1)),
    ("blip_latent_retrieval", batch(4, images_per_id=4)),  # four captions of one image
])
def test_batch_without_itm_negatives_trains_without_itm(name, samples):
    cls, cfg = tiny_config(name)
    model = cls.from_config(cfg)
    out = model(samples)
    assert out.loss_itm.item() == 0.0 and torch.isfinite(out.loss)
    out.loss.backward()


def test_full_size_types_fail_offline_with_a_clear_message():
    with pytest.raises(WeightsUnavailableError, match=r"model\.tokenizer.*tiny"):
        load_model("blip_latent_retrieval", "coco")


def test_an_albef_bert_config_is_refused_naming_the_key_and_the_fix():
    cls, cfg = tiny_config("blip_latent_retrieval", med_config_path="${lavis_latent:models/med_config_tiny.json}")
    with pytest.raises(ValueError, match=r"model\.med_config_path .*med_config_tiny\.json.*fusion_layer.*"
                                         r"med_config_blip_tiny\.json"):
        cls.from_config(cfg)
