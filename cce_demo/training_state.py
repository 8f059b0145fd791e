"""The state of one seed of a paired run at the end of an epoch: everything the next epoch depends on, so
that a run stopped between epochs continues exactly where it was (`python -m cce_demo.train --resume DIR`).

What the next epoch depends on: each model's weights and BatchNorm statistics, each optimiser's momentum
buffers, and the random streams (the one generator that draws batch order and augmentation for every model
of the pair, and torch's global CPU generator, which nothing here draws from today but a future layer
might). The learning rate is a pure function of the step, and deferred re-weighting of the epoch, so neither
needs saving. With all of it restored, a resumed run is bit-identical to an uninterrupted one on the same host
and thread count (tests/test_resume.py).

Pure: capture from live objects, restore into freshly built ones, and a flat tensor dict plus string metadata
for a safetensors file (run_directory.py writes it, atomically).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping

from pydantic import TypeAdapter
import torch
from torch import nn

from .schema import Evaluation, PairedComparison
from .per_image_predictions import PerImagePredictions

STATE_FORMAT = "1"
MODEL_PREFIX = "model."
MOMENTUM_PREFIX = "momentum."
PREDICTIONS_PREFIX = "predictions."
DATA_GENERATOR_KEY = "rng.data_generator"
CPU_GENERATOR_KEY = "rng.torch_cpu"
_EVALUATIONS = TypeAdapter(dict[str, Evaluation])
_COMPARISONS = TypeAdapter(tuple[PairedComparison, ...])


class TrainingStateError(ValueError):
    """A saved state that does not fit the run it is meant to resume; the message says what differs."""


@dataclass(frozen=True)
class SeedState:
    """One seed after `epoch` completed epochs. `comparisons` is set once the seed finished (its last epoch),
    so a resumed run also has the paired comparisons of seeds that finished before the interruption."""

    seed: int
    epoch: int
    model_states: Mapping[str, Mapping[str, torch.Tensor]]  # loss -> state_dict (on the CPU)
    momentum: Mapping[str, tuple[torch.Tensor | None, ...]]  # loss -> one buffer per parameter, in order
    data_generator: torch.Tensor  # torch.Generator.get_state() of the pair's generator
    cpu_generator: torch.Tensor  # torch.get_rng_state()
    evaluations: Mapping[str, Evaluation]  # the epoch's evaluation of every model
    comparisons: tuple[PairedComparison, ...] = ()
    # Set with `comparisons`: the final evaluation's per-image answers, which the finished run writes out.
    predictions: Mapping[str, PerImagePredictions] = field(default_factory=dict)

    @property
    def losses(self) -> tuple[str, ...]:
        return tuple(self.model_states)


def capture(
    seed: int, epoch: int, models: Mapping[str, nn.Module], optimisers: Mapping[str, torch.optim.Optimizer],
    data_generator: torch.Generator, evaluations: Mapping[str, Evaluation],
    comparisons: tuple[PairedComparison, ...] = (), predictions: Mapping[str, PerImagePredictions] | None = None,
) -> SeedState:
    """A copy on the CPU: training may go on while (or after) the state is written."""
    momentum = {}
    for name, optimiser in optimisers.items():
        buffers = []
        for parameter in models[name].parameters():
            buffer = optimiser.state.get(parameter, {}).get("momentum_buffer")
            buffers.append(None if buffer is None else buffer.detach().cpu().clone())
        momentum[name] = tuple(buffers)
    return SeedState(
        seed=seed, epoch=epoch,
        model_states={name: {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
                      for name, model in models.items()},
        momentum=momentum,
        data_generator=data_generator.get_state().clone(),
        cpu_generator=torch.get_rng_state().clone(),
        evaluations=dict(evaluations),
        comparisons=tuple(comparisons),
        predictions={name: answer.to_cpu() for name, answer in (predictions or {}).items()},
    )


def restore(
    state: SeedState, models: Mapping[str, nn.Module], optimisers: Mapping[str, torch.optim.Optimizer],
    data_generator: torch.Generator,
) -> None:
    """Put `state` into freshly built models, optimisers and generator (those of the same config and seed)."""
    if set(state.model_states) != set(models):
        raise TrainingStateError(
            f"the saved state of seed {state.seed} holds the losses {sorted(state.model_states)}, the run trains {sorted(models)}"
        )
    for name, model in models.items():
        try:
            # load_state_dict copies values into the existing tensors, so their memory layout (channels_last)
            # and device stay what the engine made them.
            model.load_state_dict(state.model_states[name], strict=True)
        except RuntimeError as error:
            raise TrainingStateError(f"the saved {name} model of seed {state.seed} does not fit this net: {error}") from None
        parameters = list(model.parameters())
        buffers = state.momentum[name]
        if len(buffers) != len(parameters):
            raise TrainingStateError(f"the saved {name} optimiser of seed {state.seed} has {len(buffers)} buffers for "
                                     f"{len(parameters)} parameters")
        optimiser = optimisers[name]
        for parameter, buffer in zip(parameters, buffers):
            if buffer is None:
                continue
            if buffer.shape != parameter.shape:
                raise TrainingStateError(f"a saved {name} momentum buffer of seed {state.seed} has shape "
                                         f"{tuple(buffer.shape)}, its parameter {tuple(parameter.shape)}")
            # empty_like keeps the parameter's layout, as SGD's own first buffer (a clone of the gradient) has.
            optimiser.state[parameter]["momentum_buffer"] = torch.empty_like(parameter).copy_(buffer)
    data_generator.set_state(state.data_generator)
    torch.set_rng_state(state.cpu_generator)


# ---------------------------------------------------------------- as a flat file


def to_tensors(state: SeedState) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the string metadata of a safetensors file holding `state`."""
    tensors: dict[str, torch.Tensor] = {}
    for name, model_state in state.model_states.items():
        for key, value in model_state.items():
            tensors[f"{MODEL_PREFIX}{name}.{key}"] = value.contiguous()
    for name, buffers in state.momentum.items():
        for index, buffer in enumerate(buffers):
            if buffer is not None:
                tensors[f"{MOMENTUM_PREFIX}{name}.{index}"] = buffer.contiguous()
    for name, answer in state.predictions.items():
        tensors[f"{PREDICTIONS_PREFIX}{name}.predicted"] = answer.predicted.contiguous()
        tensors[f"{PREDICTIONS_PREFIX}{name}.confidence"] = answer.confidence.contiguous()
    tensors[DATA_GENERATOR_KEY] = state.data_generator
    tensors[CPU_GENERATOR_KEY] = state.cpu_generator
    metadata = {
        "state_format": STATE_FORMAT,
        "seed": str(state.seed),
        "epoch": str(state.epoch),
        "losses": json.dumps(list(state.model_states)),
        # How many buffers each loss's optimiser has (absent ones are parameters without a buffer yet).
        "parameters": json.dumps({name: len(buffers) for name, buffers in state.momentum.items()}),
        # pydantic writes a NaN or infinity as null, as every record on disk does (JSON has neither).
        "evaluations": _EVALUATIONS.dump_json(dict(state.evaluations)).decode(),
        "comparisons": _COMPARISONS.dump_json(tuple(state.comparisons)).decode(),
    }
    return tensors, metadata


def from_tensors(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> SeedState:
    """The inverse of `to_tensors`; raises TrainingStateError for a file that is not such a state."""
    try:
        if metadata.get("state_format") != STATE_FORMAT:
            raise TrainingStateError(f"not a training state of format {STATE_FORMAT} (found {metadata.get('state_format')!r})")
        losses = json.loads(metadata["losses"])
        parameter_counts = json.loads(metadata["parameters"])
        model_states: dict[str, dict[str, torch.Tensor]] = {name: {} for name in losses}
        momentum = {name: [None] * int(parameter_counts[name]) for name in losses}
        answers: dict[str, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(MODEL_PREFIX):
                name, _, parameter = key[len(MODEL_PREFIX):].partition(".")
                model_states[name][parameter] = value
            elif key.startswith(MOMENTUM_PREFIX):
                name, _, index = key[len(MOMENTUM_PREFIX):].partition(".")
                momentum[name][int(index)] = value
            elif key.startswith(PREDICTIONS_PREFIX):
                name, _, part = key[len(PREDICTIONS_PREFIX):].partition(".")
                answers.setdefault(name, {})[part] = value
        return SeedState(
            seed=int(metadata["seed"]), epoch=int(metadata["epoch"]), model_states=model_states,
            momentum={name: tuple(buffers) for name, buffers in momentum.items()},
            data_generator=tensors[DATA_GENERATOR_KEY], cpu_generator=tensors[CPU_GENERATOR_KEY],
            evaluations=_EVALUATIONS.validate_json(metadata["evaluations"]),
            comparisons=_COMPARISONS.validate_json(metadata["comparisons"]),
            predictions={name: PerImagePredictions(parts["predicted"], parts["confidence"]) for name, parts in answers.items()},
        )
    except TrainingStateError:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as error:  # pydantic's ValidationError is a ValueError
        raise TrainingStateError(f"a malformed training state ({type(error).__name__}: {error})") from None

