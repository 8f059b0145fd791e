import pytest
import torch

from cce_demo.models import MODELS, build_model, count_parameters


# ResNet-20 / -32 with option-A shortcuts: 0.27 M and 0.46 M parameters (He et al. 2016, table 6).
@pytest.mark.parametrize("name, parameters", [("resnet8", 75_290), ("resnet20", 269_722), ("resnet32", 464_154)])
def test_cifar_resnets_have_the_published_sizes(name, parameters):
    assert count_parameters(build_model(name, 10)) == parameters


@pytest.mark.parametrize("name", list(MODELS))
def test_forward_shape_and_layout(name):
    model = build_model(name, 100, torch.Generator().manual_seed(0))
    x = torch.randn(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    assert model(x).shape == (4, 100)


def test_initial_weights_follow_the_generator_only():
    torch.manual_seed(123)  # global state must not matter
    first = build_model("resnet8", 10, torch.Generator().manual_seed(7))
    torch.manual_seed(456)
    second = build_model("resnet8", 10, torch.Generator().manual_seed(7))
    third = build_model("resnet8", 10, torch.Generator().manual_seed(8))
    for a, b, c in zip(first.parameters(), second.parameters(), third.parameters()):
        assert torch.equal(a, b)
    assert not all(torch.equal(a, c) for a, c in zip(first.parameters(), third.parameters()))


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match="resnet8, resnet20, resnet32"):
        build_model("vgg16", 10)


def test_conv_net_has_the_parameters_its_layout_implies():
    # ConvNet(w): 3x3 stem to w/2, three blocks (w_in -> w_out, w_out -> w_out) at w, 2w, 4w, BN after each
    # convolution (2 parameters per channel), a linear classifier. Counted here from the layout alone.
    def oracle(width, num_classes):
        stem = width // 2
        total = 3 * 9 * stem + 2 * stem
        in_channels = stem
        for out_channels in (width, 2 * width, 4 * width):
            total += in_channels * 9 * out_channels + out_channels * 9 * out_channels + 4 * out_channels
            in_channels = out_channels
        return total + 4 * width * num_classes + num_classes
    for name, width in (("convnet-s", 24), ("convnet-m", 32), ("convnet-l", 48)):
        assert count_parameters(build_model(name, 10)) == oracle(width, 10)
