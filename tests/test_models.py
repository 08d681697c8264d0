"""Registration, offline tiny types, LAVIS parity and checkpoint compatibility of the ALBEF models (the options
shared with BLIP through the mixin are run on BLIP too; BLIP's own tests: test_blip_models.py)."""
import pytest
import torch

import lavis_latent  # noqa: F401
from conftest import tiny_config
from lavis.common.registry import registry
from lavis.models import ModelZoo, load_model, load_model_and_preprocess
from lavis.models.albef_models.albef_pretrain import AlbefPretrain
from lavis.models.albef_models.albef_retrieval import AlbefRetrieval
from lavis_latent.models.encoders import WeightsUnavailableError, load_tokenizer
from lavis_latent.processors import PairedViews

ALL_REGULARIZERS = {"inmodal": {}, "separation": {}, "bridge": {}, "geometric": {}}


def batch(n=4, seed=0, paired=False):
    """A retrieval / pretraining batch; ``paired``: images and captions as ``PairedViews(view, aug)``, as the
    paired-view processors (``paired_image_train``, ``eda_caption``) give them."""
    g = torch.Generator().manual_seed(seed)
    captions = ["a red circle at the top left", "a blue square on a plain background", "two green triangles",
                "a small yellow star near the bottom", "a purple ring called alice", "an orange cross in the morning"]
    image = torch.randn(n, 3, 64, 64, generator=g)
    text = [captions[i % len(captions)] for i in range(n)]
    if paired:
        image = PairedViews(image, torch.randn(n, 3, 64, 64, generator=g))
        text = PairedViews(text, [" ".join(reversed(c.split())) for c in text])
    return {
        "image": image,
        "text_input": text,
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
    out = model(batch(4, paired=True))
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


# ----- the augmented view (model.aug_view) -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["albef_latent_retrieval", "albef_latent_pretrain", "blip_latent_retrieval",
                                  "blip_latent_pretrain"])
def test_data_view_is_the_momentum_encoding_of_the_second_view(name):
    """With the second view equal to the first, ``aug_view: data`` gives exactly ``aug_view: momentum``'s losses;
    with another second view only the regularizers change (LAVIS's losses, distillation included, read the
    original input)."""
    latent = {"inmodal": {}, "bridge": {}, "geometric": {}}
    cls, cfg = tiny_config(name, latent=latent)
    data_model = cls.from_config(cfg)
    mom_model = cls.from_config(tiny_config(name, latent=latent, aug_view="momentum")[1])
    state = {k: v.clone() for k, v in data_model.state_dict().items()}  # forward changes queues and momentum
    plain = batch(8, seed=1)  # queue_size (256) must be a multiple of the batch
    same = dict(plain, image=PairedViews(plain["image"], plain["image"].clone()),
                text_input=PairedViews(plain["text_input"], list(plain["text_input"])))
    other = batch(8, seed=1, paired=True)
    outs = {}
    for key, model, samples in (("momentum", mom_model, plain), ("same", data_model, same),
                                ("other", data_model, other)):
        model.load_state_dict(state)  # the same weights, momentum encoders and queues included
        torch.manual_seed(0)
        outs[key] = model(dict(samples))
    for k in ("loss_itc", "loss_itm", "loss_inmodal", "loss_bridge", "loss_geo"):
        assert torch.allclose(outs["same"][k], outs["momentum"][k], atol=1e-5), k
    assert torch.allclose(outs["other"].loss_itc, outs["momentum"].loss_itc, atol=1e-6)
    assert not torch.allclose(outs["other"].loss_inmodal, outs["momentum"].loss_inmodal, atol=1e-4)


def test_paired_views_without_latent_block_are_lavis_on_the_view():
    cls, cfg = tiny_config("albef_latent_retrieval")
    model = cls.from_config(cfg)
    plain, paired = batch(4, seed=2), batch(4, seed=2, paired=True)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(3)
    ref = model(dict(plain))
    model.load_state_dict(state)
    torch.manual_seed(3)
    ours = model(dict(paired))
    for key in ("loss", "loss_itc", "loss_itm"):
        assert torch.allclose(ours[key], ref[key], atol=1e-6), key


def test_data_view_without_second_view_names_the_fix():
    cls, cfg = tiny_config("albef_latent_retrieval", latent={"inmodal": {}})
    model = cls.from_config(cfg)
    with pytest.raises(ValueError, match=r"no image_aug / text_input_aug.*paired_image_train.*eda_caption.*"
                                         r"model\.aug_view: momentum"):
        model(batch(4))
    with pytest.raises(ValueError, match=r"model\.aug_view must be one of data, momentum, got 'augmented'"):
        cls.from_config(tiny_config("albef_latent_retrieval", aug_view="augmented")[1])


@pytest.mark.parametrize("name", ["albef_latent_retrieval", "blip_latent_retrieval"])
def test_retrieval_passes_image_ids_to_the_inmodal_terms(name):
    cls, cfg = tiny_config(name, latent={"inmodal": {}})
    model = cls.from_config(cfg)
    samples = batch(8, paired=True)
    out = {}
    for key, ids in (("distinct", torch.arange(8)), ("repeated", torch.arange(8) // 4)):
        torch.manual_seed(0)
        out[key] = model(dict(samples, image_id=ids)).loss_inmodal
    assert not torch.allclose(out["distinct"], out["repeated"], atol=1e-5)
    assert cls.sample_ids({"image_id": torch.tensor([[3], [4]])}).tolist() == [3, 4]
    assert cls.sample_ids({"image_id": ["a", "b"]}) is None
