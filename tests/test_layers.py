"""Reading a decoder's ``nn.Sequential`` as staged layers (painter/render/layers.py): the layout of
ComfyUI's TAESD family, built here from plain torch modules so no host is needed."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from latent_painter.painter.render.layers import layers_of, probe_reach
from latent_painter.painter.render.spans import IncrementalOptions, IncrementalStats, psnr
from latent_painter.painter.render.staged import split
from latent_painter.painter.render import decoding
from latent_painter.painter.render.strategies import DecoderView


class Clamp(nn.Module):
    """A soft clamp, as TAESD decoders start with: elementwise, of a kind layers.py does not know."""

    def forward(self, x):
        return torch.tanh(x / 3) * 3


class Block(nn.Module):
    """A TAESD residual block: three 3x3 convolutions and a skip (reach 3)."""

    def __init__(self, channels: int, norm: bool = False):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, channels, 3, padding=1))
        self.norm = nn.GroupNorm(2, channels) if norm else nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x):
        return self.fuse(self.norm(self.conv(x)) + x)


class Shift(nn.Module):
    """Moves every pixel two to the right: its one convolution reaches 1, its change reaches 2."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return torch.roll(self.conv(x), 2, dims=-1)


def taesd_layout(channels: int = 4, width: int = 8, *, middle: nn.Module | None = None,
                 late: nn.Module | None = None) -> nn.Sequential:
    """``middle`` replaces the block before the first upsampling, ``late`` the one after the last."""
    torch.manual_seed(0)
    return nn.Sequential(
        Clamp(), nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), Block(width),
        middle if middle is not None else Block(width),
        nn.Upsample(scale_factor=2), nn.Conv2d(width, width, 3, padding=1, bias=False), Block(width),
        nn.Upsample(scale_factor=2), nn.Conv2d(width, width, 3, padding=1, bias=False),
        late if late is not None else Block(width),
        nn.Conv2d(width, 3, 3, padding=1),
    ).eval()  # fmt: skip


def image(x):
    return x.clamp(0, 1).movedim(1, -1)


def test_a_taesd_layout_reads_as_layers_whose_chain_is_its_decode():
    model = taesd_layout()
    layers = layers_of(model, 4, after=image)
    assert not isinstance(layers, str), layers
    assert [(layer.scale, layer.reach, layer.whole) for layer in layers[:-1]] == [
        (1, 0, False), (1, 1, False), (1, 0, False), (1, 3, False), (1, 3, False),
        (2, 0, False), (1, 1, False), (1, 3, False),
        (2, 0, False), (1, 1, False), (1, 3, False), (1, 1, False),
    ]  # fmt: skip
    head, stages = split(layers)
    assert [(stage.scale, stage.reach) for stage in stages] == [(2, 2), (2, 3)]  # 4 px at 2x -> 2; 5 px -> 3
    latents = torch.randn(2, 4, 12, 12)
    with torch.no_grad():
        chained = head(latents)
        for stage in stages:
            chained = stage.run(chained)
        assert torch.equal(chained, image(model(latents)))


def test_a_taesd_layout_decodes_incrementally_within_the_bound():
    model = taesd_layout()
    layers = layers_of(model, 4, after=image)

    def decode(x):
        return image(model(x))

    view = DecoderView(decode=decode, name="taesd layout", layers=layers)
    generator = torch.Generator().manual_seed(2)
    frames = [torch.randn(1, 4, 24, 24, generator=generator)]
    for k in range(11):  # a stroke a frame, each in its own place
        frame = frames[-1].clone()
        frame[:, :, 2 * k : 2 * k + 3, 4:7] += 2.0
        frames.append(frame)
    latents = torch.cat(frames)
    stats = IncrementalStats()
    with torch.no_grad():
        out = decoding.decode_frames(view, latents, 1, mode="auto", options=IncrementalOptions(check_every=4), stats=stats)
        reference = torch.cat([decode(frame[None]) for frame in latents])
    assert stats.strategy == "staged" and stats.crop_decodes > 0, stats.summary()
    assert min(psnr(out[i], reference[i]) for i in range(len(out))) >= 45
    assert torch.equal(out[-1], reference[-1])


def test_a_module_whose_change_spreads_past_its_convolutions_is_refused():
    assert probe_reach(Shift(4), 4, 1) == 3  # the convolution's 1, then 2 more
    assert probe_reach(Block(4), 4, 3) == 3
    refused = layers_of(taesd_layout(middle=Shift(8)), 4, after=image)
    assert isinstance(refused, str) and "Shift changes more than its convolutions reach (probed 3 px" in refused


def test_a_norm_inside_a_block_reads_the_whole_frame_so_it_is_not_cropped():
    early = layers_of(taesd_layout(middle=Block(8, norm=True)), 4, after=image)
    assert not isinstance(early, str) and early[4].whole
    assert not isinstance(split(early), str)  # before the first upsampling: decoded whole every frame
    late = layers_of(taesd_layout(late=Block(8, norm=True)), 4, after=image)
    assert not isinstance(late, str) and late[10].whole
    assert "reads the whole frame" in split(late)


@pytest.mark.parametrize("module, why", [
    (nn.Conv2d(8, 8, 3, padding=1, stride=2), "strided"),
    (nn.Conv2d(8, 8, 3, padding=0), "does not keep the size"),
    (nn.Upsample(scale_factor=2, mode="bilinear"), "not a whole-number nearest upsampling"),
])  # fmt: skip
def test_layers_that_cannot_be_cropped_say_why(module, why):
    refused = layers_of(taesd_layout(middle=module), 4)
    assert isinstance(refused, str) and why in refused
