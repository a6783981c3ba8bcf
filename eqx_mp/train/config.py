"""The configuration of a training run: one frozen dataclass that validates itself.

The model's hyper-parameters are not listed here: they are the fields of
:class:`~eqx_mp.models.PotentialConfig` (names, defaults, help texts and checks), added to
:class:`TrainConfig` as fields of the same names. ``max_atomic_number`` and ``elements`` are the
exception; they come from the data. The command line (:mod:`eqx_mp.train.cli`) is generated from
the fields of :class:`TrainConfig`, so a new model hyper-parameter or a new training option
appears as a flag without being written again.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..models import PRESETS, RADIAL_BASES, PotentialConfig
from .e0s import E0_MODES

__all__ = ["TrainConfig", "MODEL_FIELDS", "flag_name"]

#: A real number (``int`` accepted where a ``float`` is expected, also under beartype).
Real = float | int

#: :class:`~eqx_mp.models.PotentialConfig` fields that are not configured but taken from the data.
FROM_DATA = ("max_atomic_number", "elements")

#: Names of the model presets (``--preset``; :data:`~eqx_mp.models.PRESETS`).
PRESET_NAMES: tuple[str, ...] = tuple(PRESETS)

#: The preset of a run that names none (its fields are the defaults of :class:`TrainConfig`'s
#: model fields): the most accurate at equal wall time on the embedded Cu/Pt sets (150-600 s);
#: on DFT molecules ``medium`` is, from 300 s on (validation splits, ``docs/accuracy.md``).
DEFAULT_PRESET = "small"

#: Allowed values of string options, shown by ``--help`` and checked by argparse.
CHOICES: dict[str, tuple[str, ...]] = {
    "radial_basis": RADIAL_BASES,
    "e0s": E0_MODES,
    "dtype": ("float32", "float64"),
    "schedule": ("exponential", "plateau"),
    "preset": PRESET_NAMES,
}

#: Names of the :class:`TrainConfig` fields that are ``Potential`` hyper-parameters.
MODEL_FIELDS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(PotentialConfig) if f.name not in FROM_DATA
)

_ModelOptions = dataclasses.make_dataclass(
    "_ModelOptions",
    [(f.name, f.type, dataclasses.field(default=PRESETS[DEFAULT_PRESET].get(f.name, f.default),
                                        metadata=f.metadata))
     for f in dataclasses.fields(PotentialConfig) if f.name in MODEL_FIELDS],
    frozen=True,
)
_ModelOptions.__module__ = __name__
_ModelOptions.__doc__ = "The configurable fields of :class:`~eqx_mp.models.PotentialConfig`."


def _opt(default: Any, help: str, **argparse_options: Any) -> Any:
    """A dataclass field with its command-line help (and extra argparse options)."""
    return dataclasses.field(default=default, metadata={"help": help, **argparse_options})


def flag_name(field: dataclasses.Field) -> str:
    """The command-line flag of a :class:`TrainConfig` field.

    Arguments:
        field: A field of :class:`TrainConfig`.

    Returns:
        ``--time-budget`` for ``time_budget``; ``--no-plot`` for a switch that is on by default.
    """
    flag = field.name.replace("_", "-")
    return f"--no-{flag}" if field.default is True else f"--{flag}"


@dataclasses.dataclass(frozen=True)
class TrainConfig(_ModelOptions):
    """Everything that defines a training run; the command-line flags map one to one to fields.

    The model fields are those of :class:`~eqx_mp.models.PotentialConfig` (``features``,
    ``max_degree``, ``num_basis``, ``cutoff``, ``num_iterations``, ``radial_basis``,
    ``correlation``, ``radial_mlp``) with its checks, and the defaults of the
    :data:`DEFAULT_PRESET` preset (other fields: ``PotentialConfig``'s defaults);
    ``max_atomic_number`` and ``elements`` are taken from the data. Another preset's model
    fields are applied by :meth:`from_preset` (as ``--preset`` does). The configuration is
    validated when it is built: a bad value raises ``ValueError`` (or ``TypeError``) naming the
    field and the value. The **Arguments** section below is generated from the fields' help
    texts.

    Example::

        config = TrainConfig(features=16, time_budget=60, output="runs/small")
        Potential(config.model_config(elements=[29, 78]), key=jax.random.key(0))
        bigger = TrainConfig.from_preset("medium", time_budget=600)
    """

    data: str | None = _opt(
        None, "data set: 'cluster' (the embedded Cu/Pt icosahedron set, the default), 'bulk' (the "
        "embedded periodic Cu/Pt fcc set with stress), a .npz file (see eqx_mp.data) or any "
        "ASE-readable file (extxyz with energies, forces and optionally cell, pbc and stress); "
        "frames may differ in size", metavar="FILE")
    output: str = _opt("runs/latest", "output directory for model.eqx, run.json and parity.png",
                       metavar="DIR")
    time_budget: Real = _opt(150.0, "wall-clock seconds for training, compilation included "
                             "(0 = no limit)", metavar="S")
    epochs: int = _opt(1000, "maximum number of epochs")
    lr: Real = _opt(1e-2, "initial Adam learning rate")
    lr_final: Real = _opt(5e-4, "final learning rate (exponential decay over the epochs or over "
                          "the time budget left after compilation, whichever ends sooner)")
    clip_grad: Real = _opt(10.0, "clip the gradient to this global norm before Adam (0 = no "
                           "clipping); keeps a bad batch from throwing the weights off")
    batch_size: int = _opt(2, "structures per optimisation step (small batches: more updates "
                           "in a time budget, which wins on CPU)")
    force_weight: Real = _opt(100.0, "loss = n² MSE(energy per atom) + FORCE_WEIGHT MSE(force "
                              "components) + STRESS_WEIGHT MSE(stress components), n = mean atoms "
                              "per training structure (eV², eV²/Å², eV²/Å⁶; for structures of one "
                              "size the first term is the MSE of the total energy)")
    stress_weight: Real = _opt(1000.0, "weight of the stress term of the loss (Å⁶; only frames "
                               "with a reference stress count)")
    num_valid: int = _opt(200, "validation frames (the epoch with the lowest (n MAE_E/atom)^2 + "
                          "FORCE_WEIGHT MAE_F^2 + STRESS_WEIGHT MAE_S^2 on them is saved)")
    num_test: int = _opt(200, "held-out test frames")
    seed: int = _opt(0, "seed for split, initialisation and batches")
    plot: bool = _opt(True, "write the parity plot parity.png of the test split")
    devices: int = _opt(1, "data-parallel training over D devices (0 = all visible devices); the "
                        "batch size must be a multiple of D. Simulate devices on a CPU with "
                        "XLA_FLAGS=--xla_force_host_platform_device_count=D", metavar="D")
    ema_decay: Real = _opt(0.99, "decay of the exponential moving average of the weights, which "
                           "validation, model selection, the saved model and the test metrics use "
                           "(warm-up: min(EMA_DECAY, (1+n)/(10+n)) after n updates); 0 = off")
    e0s: str = _opt("auto", "per-element reference energies, fixed during training (the "
                    "network learns the remainder): 'auto' = 'isolated' when the data have an "
                    "isolated-atom frame for every element, else 'average'; "
                    "'average' = least-squares fit on the training "
                    "split, 'isolated' = the energies of the isolated-atom frames (one atom, or "
                    "config_type=IsolatedAtom; left out of training and of the splits) plus the "
                    "mean binding energy per atom, 'none' = zero")
    schedule: str = _opt("exponential", "learning-rate schedule: 'exponential' = decay from LR "
                         "to LR_FINAL over the epochs or the time budget; 'plateau' = LR times "
                         "PLATEAU_FACTOR after PLATEAU_PATIENCE epochs without a better "
                         "validation score (not below LR_FINAL)")
    plateau_patience: int = _opt(10, "epochs without improvement before the rate is reduced "
                                 "(--schedule plateau)")
    plateau_factor: Real = _opt(0.8, "factor of each reduction (--schedule plateau)")
    stage_two: Real = _opt(0.0, "start stage two (MACE's recipe: energy weight times "
                           "STAGE_TWO_ENERGY_FACTOR, learning rate STAGE_TWO_LR) after this "
                           "fraction of the run (time budget, or epochs without one); 0 = off",
                           metavar="FRACTION")
    stage_two_energy_factor: Real = _opt(100.0, "factor on the energy term of the loss in stage "
                                         "two")
    stage_two_lr: Real = _opt(1e-3, "learning rate of stage two (reduced on plateaus with "
                              "--schedule plateau)")
    dtype: str = _opt("float32", "floating-point precision of the parameters and the computation "
                      "(float64 enables jax_enable_x64)")
    preset: str = _opt(DEFAULT_PRESET, "model size, the defaults of the model flags (those "
                       "given explicitly win): 'e3x' = e3x's example (two-body messages, L=1), "
                       "'small' = products of the messages (body order 3 per block) and a radial "
                       "MLP at L=1, the most accurate at equal wall time on the Cu/Pt sets; "
                       "'medium' = body order 4, L=2, the most accurate on DFT molecules from "
                       "300 s; 'large' = body order 4, L=3; slower per step (alias: --model)",
                       aliases=("--model",))
    checkpoint_every: Real = _opt(300.0, "write OUTPUT/checkpoint.eqx every S seconds (and after "
                                  "every epoch); resume with --resume OUTPUT", metavar="S")
    nonfinite_patience: int = _opt(5, "steps with a NaN/inf loss, gradient or update are skipped; "
                                   "after N in a row the last good state (end of the last epoch) "
                                   "is restored and the learning rate halved", metavar="N")

    def __post_init__(self) -> None:
        minimum = {"epochs": 1, "batch_size": 1, "num_valid": 0, "num_test": 0, "seed": 0,
                   "devices": 0, "nonfinite_patience": 1}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, bool):
                if not isinstance(value, bool):
                    raise TypeError(f"{f.name} must be a bool, got {value!r}")
            elif isinstance(f.default, int) and (isinstance(value, bool)
                                                 or not isinstance(value, int)):
                raise TypeError(f"{f.name} must be an int, got {type(value).__name__} {value!r}")
            elif isinstance(f.default, float) and (isinstance(value, bool)
                                                   or not isinstance(value, (int, float))):
                raise TypeError(f"{f.name} must be a number, got {type(value).__name__} {value!r}")
            if f.name in minimum and value < minimum[f.name]:
                raise ValueError(f"{f.name} must be >= {minimum[f.name]}, got {value}")
        if not 0 <= self.stage_two < 1:
            raise ValueError(f"stage_two must be in [0, 1) (0 = off), got {self.stage_two}")
        if not (0 < self.plateau_factor < 1 and self.plateau_patience >= 1):
            raise ValueError(f"plateau_factor must be in (0, 1) and plateau_patience >= 1, got "
                             f"{self.plateau_factor} and {self.plateau_patience}")
        if not (self.stage_two_lr > 0 and self.stage_two_energy_factor > 0):
            raise ValueError(f"stage_two_lr and stage_two_energy_factor must be > 0, got "
                             f"{self.stage_two_lr} and {self.stage_two_energy_factor}")
        if self.time_budget < 0:
            raise ValueError(
                f"time_budget must be >= 0 seconds (0 = no limit), got {self.time_budget}")
        if not self.clip_grad >= 0:
            raise ValueError(f"clip_grad must be >= 0 (0 = no clipping), got {self.clip_grad}")
        if not (self.lr > 0 and self.lr_final > 0):
            raise ValueError(f"lr and lr_final must be > 0, got {self.lr} and {self.lr_final}")
        for name in ("force_weight", "stress_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1) (0 = off), got {self.ema_decay}")
        if not self.checkpoint_every > 0:
            raise ValueError(f"checkpoint_every must be > 0 seconds, got {self.checkpoint_every}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        self.model_config(elements=None)  # the model's own checks (sizes, radial basis, cutoff)
        named, default = PRESETS[self.preset], PRESETS[DEFAULT_PRESET]
        differ = [k for k in named if named[k] != default.get(k)]
        if differ and all(getattr(self, k) == default[k] for k in differ):
            raise ValueError(
                f"preset={self.preset!r}, but the model fields are those of the default preset "
                f"{DEFAULT_PRESET!r} ({', '.join(f'{k}={default[k]!r}' for k in differ)}): build "
                f"with TrainConfig.from_preset({self.preset!r}, ...) to apply it")

    @classmethod
    def from_preset(cls, preset: str, **fields: Any) -> TrainConfig:
        """A configuration with the model fields of a named preset (what ``--preset`` does).

        Arguments:
            preset: One of :data:`PRESET_NAMES`.
            **fields: Any other :class:`TrainConfig` fields; model fields given here win over
                the preset's.

        Returns:
            The validated configuration.

        Raises:
            ValueError: for an unknown preset, or a bad field value.
        """
        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {list(PRESET_NAMES)}, got {preset!r}")
        return cls(**{**PRESETS[preset], **fields, "preset": preset})

    def model_config(self, elements: Any, max_atomic_number: int | None = None) -> PotentialConfig:
        """The :class:`~eqx_mp.models.PotentialConfig` of this run's model.

        Arguments:
            elements: Atomic numbers of the data set (the model will know only these), or
                ``None`` for any.
            max_atomic_number: Largest atomic number of the embedding (default: the largest of
                ``elements``, or 118).

        Returns:
            The validated model configuration.

        Raises:
            ValueError, TypeError: for a bad model hyper-parameter (naming it and the value).
        """
        if elements is not None:
            elements = tuple(sorted({int(z) for z in elements}))
        if max_atomic_number is None:
            max_atomic_number = 118 if elements is None else max(elements)
        return PotentialConfig(**{k: getattr(self, k) for k in MODEL_FIELDS},
                               max_atomic_number=max_atomic_number, elements=elements)


def _document_fields(cls: type) -> None:
    """Append an **Arguments** section generated from the field help texts to the docstring."""
    lines = [f"        {f.name}: {f.metadata['help'].rstrip('.')} (default ``{f.default!r}``)."
             for f in dataclasses.fields(cls)]
    cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n\n    Arguments:\n" + "\n".join(lines) + "\n"


_document_fields(TrainConfig)
