"""Registration, offline tiny types, LAVIS parity and checkpoint compatibility of the ALBEF models."""
import pytest
import torch

import lavis_latent  # noqa: F401
from conftest import tiny_config
from lavis.common.registry import registry
from lavis.models import ModelZoo, load_model, load_model_and_preprocess
from lavis.models.albef_models.albef_pretrain import AlbefPretrain
from lavis.models.albef_models.albef_retrieval import AlbefRetrieval
from lavis_latent.models.encoders import WeightsUnavailableError, load_tokenizer

ALL_REGULARIZERS = {"inmodal": {}, "separation": {}, "bridge": {}, "geometric": {}}


def batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    captions = ["a red circle at the top left", "a blue square on a plain background", "two green triangles",
                "a small yellow star near the bottom", "a purple ring called alice", "an orange cross in the morning"]
    return {
        "image": torch.randn(n, 3, 64, 64, generator=g),
        "text_input": [captions[i % len(captions)] for i in range(n)],
        "image_id": torch.arange(n),
        "epoch": 0,
        "iters": 1,
        "num_iters_per_epoch": 10,
    }


def test_registered_in_lavis_model_zoo():
    zoo = str(ModelZoo())
    assert "albef_latent_pretrain" in zoo and "albef_latent_retrieval" in zoo
    assert set(registry.get_model_class("albef_latent_retrieval").PRETRAINED_MODEL_CONFIG_DICT) == {"coco", "flickr", "tiny"}
    assert set(registry.get_model_class("albef_latent_pretrain").PRETRAINED_MODEL_CONFIG_DICT) == {"base", "tiny"}
    assert issubclass(registry.get_model_class("albef_latent_retrieval"), AlbefRetrieval)
    assert issubclass(registry.get_model_class("albef_latent_pretrain"), AlbefPretrain)


@pytest.mark.parametrize("name, loss_keys", [
    ("albef_latent_retrieval", {"loss", "loss_itc", "loss_itm"}),
    ("albef_latent_pretrain", {"loss", "loss_itc", "loss_itm", "loss_mlm"}),
])
def test_tiny_loads_offline_and_trains(name, loss_keys):
    model, vis, txt = load_model_and_preprocess(name, "tiny")
    assert vis["eval"].transform is not None
    image = vis["eval"](__import__("PIL.Image", fromlist=["Image"]).new("RGB", (80, 50), (200, 10, 10)))
    assert image.shape == (3, 64, 64)
    assert txt["eval"]("A Red  Circle!") == "a red circle"
    out = model(batch())
    assert {k for k in out.keys() if k.startswith("loss")} == loss_keys
    out.loss.backward()
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(model.get_parameter(n).grad is not None for n in trainable if not n.startswith("text_encoder.cls"))


def test_local_vocabulary_never_unknown():
    tok = load_tokenizer(registry.get_model_class("albef_latent_retrieval").PRETRAINED_MODEL_CONFIG_DICT["tiny"]
                         .replace("models/albef_latent_retrieval_tiny.yaml", "tokenizer/vocab.txt"))
    ids = tok("Zebra-like quokkas @ 17:45, naïve café!")["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(tok("a red circle")["input_ids"], skip_special_tokens=True) == "a red circle"


@pytest.mark.parametrize("name, lavis_cls", [("albef_latent_retrieval", AlbefRetrieval), ("albef_latent_pretrain", AlbefPretrain)])
def test_without_latent_block_losses_equal_lavis(name, lavis_cls):
    cls, cfg = tiny_config(name)
    ours = cls.from_config(cfg)

    class Reference(lavis_cls):  # LAVIS's class, with the local tokenizer instead of the hub's
        def init_tokenizer(self):
            return ours.tokenizer

    kwargs = dict(image_encoder=ours.visual_encoder, text_encoder=ours.text_encoder, queue_size=cfg.queue_size,
                  embed_dim=cfg.embed_dim)
    import copy
    reference = Reference(**copy.deepcopy(kwargs))
    reference.load_state_dict(ours.state_dict())
    for model in (ours, reference):
        model.train()
    samples = batch(8, seed=3)
    torch.manual_seed(7)
    out_ours = ours(dict(samples))
    torch.manual_seed(7)
    out_ref = reference(dict(samples))
    for key in [k for k in out_ref.keys() if k.startswith("loss")]:
        assert torch.allclose(out_ours[key], out_ref[key], atol=1e-6, rtol=0), key
    assert {k for k in out_ours.keys() if k.startswith("loss")} == {k for k in out_ref.keys() if k.startswith("loss")}


def test_latent_terms_are_added_to_loss():
    cls, cfg = tiny_config("albef_latent_retrieval", latent=ALL_REGULARIZERS)
    model = cls.from_config(cfg)
    out = model(batch(4))
    terms = ["loss_itc", "loss_itm", "loss_inmodal", "loss_sep", "loss_bridge", "loss_geo"]
    assert torch.allclose(out.loss, sum(out[k] for k in terms))
    out.loss.backward()
    # every trainable parameter (separation heads included) gets a gradient: DDP without find_unused_parameters
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    assert all(not p.requires_grad for p in model.separation_m.parameters())


def test_original_albef_state_dict_loads_with_only_new_parameters_missing(tmp_path):
    plain_cls, plain_cfg = tiny_config("albef_latent_retrieval")
    original = plain_cls.from_config(plain_cfg)  # same parameter names as LAVIS's AlbefRetrieval
    lavis_keys = set(original.state_dict())
    path = tmp_path / "albef_original.pth"
    torch.save({"model": original.state_dict()}, path)

    cls, cfg = tiny_config("albef_latent_retrieval", latent=ALL_REGULARIZERS)
    model = cls.from_config(cfg)
    msg = model.load_checkpoint(str(path))
    assert msg.unexpected_keys == []
    assert msg.missing_keys and all(k.startswith(("latent.", "separation_m.")) for k in msg.missing_keys)
    for key, value in original.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert set(model.state_dict()) - lavis_keys == set(msg.missing_keys)


def test_checkpoint_without_momentum_weights_resyncs_momentum_encoders(tmp_path):
    cls, cfg = tiny_config("albef_latent_retrieval")
    source = cls.from_config(cfg)
    state = {k: v for k, v in source.state_dict().items() if "_m." not in k}  # as LAVIS's runner saves
    torch.save({"model": state}, tmp_path / "ckpt.pth")
    cfg.pretrained = str(tmp_path / "ckpt.pth")
    model = cls.from_config(cfg)
    for online, momentum in model.model_pairs:
        for p, p_m in zip(online.parameters(), momentum.parameters()):
            assert torch.equal(p, p_m)
    assert torch.equal(model.visual_encoder.pos_embed, source.visual_encoder.pos_embed)


def test_full_size_types_fail_offline_with_a_clear_message():
    with pytest.raises(WeightsUnavailableError, match=r"model\.tokenizer.*tiny"):
        load_model("albef_latent_retrieval", "coco")


def test_missing_local_checkpoint_names_the_key(tmp_path):
    cls, cfg = tiny_config("albef_latent_retrieval", pretrained=str(tmp_path / "nope.pth"))
    with pytest.raises(FileNotFoundError, match=r"model\.pretrained.*nope\.pth"):
        cls.from_config(cfg)


def test_bad_latent_key_fails_at_build_time():
    cls, cfg = tiny_config("albef_latent_retrieval", latent={"brdige": {"weight": 1.0}})
    with pytest.raises(ValueError, match="brdige"):
        cls.from_config(cfg)
