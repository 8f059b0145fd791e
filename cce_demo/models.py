"""The networks, registered by name: CIFAR ResNets (He et al. 2016, sec. 4.2) with option-A shortcuts as in
LDAM-DRW, and CPU-first residual-free conv nets.

The conv nets (`convnet-s/m/l`) are what the CPU presets train. They follow what fast CIFAR training work
found: no residual branches, BatchNorm after every convolution, max-pool downsampling right after the widening
convolution (so the second convolution of a block runs at a quarter of the pixels), and widths that keep the
matrix products large enough for a CPU's vector units. On 2 cores they buy more accuracy per second than
ResNet-8 (bench/frontier.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ShortcutA(nn.Module):
    """Option A: subsample by 2 and zero-pad the new channels — no parameters, as in the original CIFAR
    ResNets and LDAM-DRW."""

    def __init__(self, extra_channels: int) -> None:
        super().__init__()
        self.extra_channels = extra_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = self.extra_channels // 2
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, half, self.extra_channels - half))


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        needs_projection = stride != 1 or in_channels != out_channels
        self.shortcut: nn.Module = ShortcutA(out_channels - in_channels) if needs_projection else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32x32 inputs: a 3x3 stem, three stages of n blocks at widths 16/32/64, global
    average pooling and a linear classifier."""

    def __init__(self, blocks_per_stage: int, num_classes: int, widths: tuple[int, int, int] = (16, 32, 64)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        stages = []
        in_channels = widths[0]
        for stage_index, width in enumerate(widths):
            for block_index in range(blocks_per_stage):
                stride = 2 if stage_index > 0 and block_index == 0 else 1
                stages.append(BasicBlock(in_channels, width, stride))
                in_channels = width
        self.blocks = nn.Sequential(*stages)
        self.linear = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.blocks(out)
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.linear(out)


class ConvBlock(nn.Module):
    """Widening 3x3 convolution, 2x2 max-pool, BN, ReLU, then a 3x3 convolution at the pooled size, BN, ReLU.
    Pooling before the second convolution quarters its cost; BN after the pool normalises what is kept."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(F.max_pool2d(self.conv1(x), 2)))
        return F.relu(self.bn2(self.conv2(out)))


class ConvNet(nn.Module):
    """A residual-free CIFAR conv net: a 3x3 stem at 32x32, three `ConvBlock`s (32 -> 16 -> 8 -> 4 pixels) at
    widths w, 2w, 4w, global max-pool and a linear classifier. Max rather than average pooling at the end:
    the classifier sees whether a feature fired anywhere, which fast CIFAR nets found trains faster."""

    def __init__(self, width: int, num_classes: int, stem_width: int | None = None) -> None:
        super().__init__()
        stem_width = stem_width or width // 2
        self.conv1 = nn.Conv2d(3, stem_width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        widths = (width, 2 * width, 4 * width)
        self.blocks = nn.Sequential(
            ConvBlock(stem_width, widths[0]), ConvBlock(widths[0], widths[1]), ConvBlock(widths[1], widths[2])
        )
        self.linear = nn.Linear(widths[2], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.blocks(out)
        out = F.adaptive_max_pool2d(out, 1).flatten(1)
        return self.linear(out)


MODELS = {
    "resnet8": lambda num_classes: CifarResNet(1, num_classes),
    "resnet20": lambda num_classes: CifarResNet(3, num_classes),
    "resnet32": lambda num_classes: CifarResNet(5, num_classes),
    # Widths chosen so that one training image costs about as much as ResNet-8 (s), 1.8x (m) and 4.0x (l)
    # in multiply-adds (tests/test_stated_figures.py counts them); which buys most accuracy per second is
    # bench/frontier.py's question.
    "convnet-s": lambda num_classes: ConvNet(24, num_classes),
    "convnet-m": lambda num_classes: ConvNet(32, num_classes),
    "convnet-l": lambda num_classes: ConvNet(48, num_classes),
}


def initialise(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """Kaiming-normal convolutions and linear layers (as LDAM-DRW), BN at identity, drawn from `generator` so
    the initial weights depend on the seed passed in and on nothing global."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, generator=generator)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model


def build_model(name: str, num_classes: int, generator: torch.Generator | None = None) -> nn.Module:
    """The model registered as `name`, in channels_last layout (10-50 % faster on CPU, and what cuDNN prefers).
    With a generator its weights are drawn from it; without, they are left for a checkpoint to fill."""
    if name not in MODELS:
        raise ValueError(f"model: unknown model {name!r}; valid models: {', '.join(MODELS)}")
    model = MODELS[name](num_classes)
    if generator is not None:
        initialise(model, generator)
    return model.to(memory_format=torch.channels_last)


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())
