"""A backbone family is one registry entry: a new family registered from outside edgedino builds, saves in both
layouts (its official aliases included), loads back with its architecture read off the tensors, and is refused
where it has no Hugging Face layout."""

from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from edgedino import create_model, load_backbone, save_backbone
from edgedino.errors import CheckpointError
from edgedino.models import FAMILIES, Backbone, Family, get_family
from edgedino.models.infer import check_family, infer_config


@dataclass(frozen=True)
class ToyConfig:
    name: str = "custom"
    dim: int = 8
    in_chans: int = 3
    family: str = field(default="toy", init=False)

    def checked(self):
        return self

    @property
    def stride(self) -> int:
        return 8

    @property
    def embed_dim(self) -> int:
        return self.dim

    def describe(self) -> str:
        return f"toy, dim {self.dim}"


class ToyNet(Backbone):
    """Patchify, one norm: enough of a backbone to load, save and run."""

    def __init__(self, cfg: ToyConfig, drop_path: float = 0.0):
        super().__init__()
        self.cfg = cfg
        self.stem = nn.Conv2d(cfg.in_chans, cfg.dim, 8, 8)
        self.norm = nn.LayerNorm(cfg.dim)

    def forward_features(self, x, masks=None, local=False):
        tokens = self.norm(self.stem(x).permute(0, 2, 3, 1))
        return {"cls": tokens.mean((1, 2)), "registers": tokens.new_zeros(len(x), 0, self.cfg.dim),
                "patch_tokens": tokens}


TOY = Family(
    name="toy", title="Toy", config=ToyConfig, module=f"{__name__}:ToyNet", marker="stem.weight",
    infer=lambda sd: ToyConfig(dim=sd["stem.weight"].shape[0], in_chans=sd["stem.weight"].shape[1]),
    layer_id=lambda name, cfg: 0 if name.startswith("stem") else 2, depth=lambda cfg: 1,
    aliases={"final_norm.weight": "norm.weight"},  # an official layout that writes one tensor twice
)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(FAMILIES, "toy", TOY)
    return TOY


def test_a_registered_family_builds_saves_loads_and_infers(toy, tmp_path):
    net = create_model(ToyConfig(dim=12)).reset_parameters(seed=3)
    assert isinstance(net, ToyNet) and get_family("toy") is toy
    x = torch.randn(2, 3, 32, 48)
    want = net.forward_features(x)["patch_tokens"]

    official = save_backbone(net, tmp_path / "toy.pth", "official")
    stored = torch.load(official, weights_only=True)
    assert torch.equal(stored["final_norm.weight"], stored["norm.weight"])
    assert infer_config(stored) == ToyConfig(dim=12)
    assert check_family(ToyConfig(dim=12), stored).dim == 12
    for path in (official, save_backbone(net, tmp_path / "toy.pt", "edgedino")):
        back = load_backbone(path)
        assert isinstance(back, ToyNet) and back.cfg == ToyConfig(dim=12)
        assert torch.equal(back.forward_features(x)["patch_tokens"], want)

    stored["final_norm.weight"] = stored["final_norm.weight"] + 1
    torch.save(stored, tmp_path / "edited.pth")
    with pytest.raises(CheckpointError, match="'final_norm.weight' and 'norm.weight' differ"):
        load_backbone(tmp_path / "edited.pth")
    with pytest.raises(CheckpointError, match="transformers has no toy model"):
        save_backbone(net, tmp_path / "hf", "hf")
    assert not (tmp_path / "hf").exists()


def test_weights_of_another_family_are_named_by_it(toy):
    with pytest.raises(CheckpointError, match="the weights are a Toy checkpoint, but the model vit_test is a vit"):
        check_family(create_model("vit_test").cfg, {"stem.weight": torch.zeros(8, 3, 8, 8)})
