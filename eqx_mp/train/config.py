"""The configuration of a training run: one frozen dataclass that validates itself.

The model's hyper-parameters are not listed here: they are the keyword arguments of
:class:`~eqx_mp.models.Potential` (its signature gives the names and defaults, its docstring the
help text), added to :class:`TrainConfig` as fields of the same names by :func:`_model_fields`.
``max_atomic_number`` is the exception; it comes from the data. The command line
(:mod:`eqx_mp.train.cli`) is generated from the fields of :class:`TrainConfig`, so a new
``Potential`` argument or a new training option appears as a flag without being written again.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

import equinox as eqx
import jax

from ..models import RADIAL_BASES, Potential
from .e0s import E0_MODES

__all__ = ["TrainConfig", "MODEL_FIELDS", "flag_name"]

#: A real number (``int`` accepted where a ``float`` is expected, also under beartype).
Real = float | int

#: ``Potential`` arguments that are not configured: the PRNG key, and the largest atomic number,
#: which is taken from the data.
_NOT_CONFIGURED = ("self", "key", "max_atomic_number")

#: Allowed values of string options, shown by ``--help`` and checked by argparse.
CHOICES: dict[str, tuple[str, ...]] = {
    "radial_basis": RADIAL_BASES,
    "e0s": E0_MODES,
    "dtype": ("float32", "float64"),
}


def _argument_docs(obj: Any) -> dict[str, str]:
    """``{name: text}`` from the ``Arguments:`` section of ``obj``'s docstring."""
    doc = inspect.getdoc(obj) or ""
    section = doc.partition("Arguments:\n")[2]
    out: dict[str, str] = {}
    name = None
    for line in section.splitlines():
        m = re.match(r"^    (\w+): (.*)$", line)
        if m:
            name, text = m.groups()
            out[name] = text
        elif line.startswith("        ") and name is not None:
            out[name] += " " + line.strip()
        elif line.strip():
            break  # the next section
    return {k: " ".join(v.split()) for k, v in out.items()}


def _model_fields() -> list[tuple[str, type, dataclasses.Field]]:
    """Dataclass fields for the configurable arguments of :class:`~eqx_mp.models.Potential`."""
    docs = _argument_docs(Potential)
    fields = []
    for name, p in inspect.signature(Potential.__init__).parameters.items():
        if name in _NOT_CONFIGURED:
            continue
        if p.default is inspect.Parameter.empty:
            raise TypeError(f"Potential argument {name!r} has no default; TrainConfig needs one")
        kind = float if isinstance(p.default, float) else type(p.default)
        help_text = docs.get(name) or f"Potential's {name} argument"
        fields.append((name, kind, dataclasses.field(default=p.default, metadata={"help": help_text})))
    return fields


#: Names of the :class:`TrainConfig` fields that are ``Potential`` hyper-parameters.
MODEL_FIELDS: tuple[str, ...] = tuple(name for name, _, _ in _model_fields())

_ModelOptions = dataclasses.make_dataclass("_ModelOptions", _model_fields(), frozen=True)
_ModelOptions.__module__ = __name__
_ModelOptions.__doc__ = "The keyword arguments of :class:`~eqx_mp.models.Potential` (generated)."


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

    The model fields are the keyword arguments of :class:`~eqx_mp.models.Potential` (``features``,
    ``max_degree``, ``num_basis``, ``cutoff``, ``num_iterations``, ``radial_basis``, ...) with
    its defaults; ``max_atomic_number`` is taken from the data. The configuration is validated
    when it is built: a bad value raises ``ValueError`` (or ``TypeError``) naming the field and
    the value. The **Arguments** section below is generated from the fields' help texts.

    Example::

        config = TrainConfig(features=16, time_budget=60, output="runs/small")
        config.model_hyperparameters(max_atomic_number=78)  # Potential(**..., key=...)
    """

    data: str | None = _opt(
        None, "data set: .npz with positions (F,N,3), numbers (N,) or (F,N), energies (F,), "
        "forces (F,N,3), or any ASE-readable file with energies and forces; "
        "default: the embedded Cu/Pt icosahedron set", metavar="FILE")
    output: str = _opt("runs/latest", "output directory for model.eqx, run.json and parity.png",
                       metavar="DIR")
    time_budget: Real = _opt(150.0, "wall-clock seconds for training, compilation included "
                             "(0 = no limit)", metavar="S")
    epochs: int = _opt(1000, "maximum number of epochs")
    lr: Real = _opt(1e-2, "initial Adam learning rate")
    lr_final: Real = _opt(5e-4, "final learning rate (exponential decay over the epochs or over the "
                          "time budget left after compilation, whichever ends sooner)")
    batch_size: int = _opt(16, "structures per optimisation step")
    force_weight: Real = _opt(10.0, "loss = MSE(energy) + FORCE_WEIGHT * MSE(force components), in "
                              "eV² and eV²/Å²")
    num_valid: int = _opt(200, "validation frames (the epoch with the lowest "
                          "MAE_E^2 + FORCE_WEIGHT * MAE_F^2 on them is saved)")
    num_test: int = _opt(200, "held-out test frames")
    seed: int = _opt(0, "seed for split, initialisation and batches")
    plot: bool = _opt(True, "write the parity plot parity.png of the test split")
    devices: int = _opt(1, "data-parallel training over D devices (0 = all visible devices); the "
                        "batch size must be a multiple of D. Simulate devices on a CPU with "
                        "XLA_FLAGS=--xla_force_host_platform_device_count=D", metavar="D")
    ema_decay: Real = _opt(0.99, "decay of the exponential moving average of the weights, which "
                           "validation, model selection, the saved model and the test metrics use "
                           "(warm-up: min(EMA_DECAY, (1+n)/(10+n)) after n updates); 0 = off")
    e0s: str = _opt("average", "per-element reference energies: 'average' = least-squares fit on "
                    "the training split (fixed during training; the network learns the "
                    "remainder), 'none' = zero")
    dtype: str = _opt("float32", "floating-point precision of the parameters and the computation "
                      "(float64 enables jax_enable_x64)")
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
            elif isinstance(f.default, int) and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"{f.name} must be an int, got {type(value).__name__} {value!r}")
            elif isinstance(f.default, float) and (isinstance(value, bool)
                                                   or not isinstance(value, (int, float))):
                raise TypeError(f"{f.name} must be a number, got {type(value).__name__} {value!r}")
            if f.name in minimum and value < minimum[f.name]:
                raise ValueError(f"{f.name} must be >= {minimum[f.name]}, got {value}")
        if self.time_budget < 0:
            raise ValueError(f"time_budget must be >= 0 seconds (0 = no limit), got {self.time_budget}")
        if not (self.lr > 0 and self.lr_final > 0):
            raise ValueError(f"lr and lr_final must be > 0, got {self.lr} and {self.lr_final}")
        if self.force_weight < 0:
            raise ValueError(f"force_weight must be >= 0, got {self.force_weight}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1) (0 = off), got {self.ema_decay}")
        if not self.checkpoint_every > 0:
            raise ValueError(f"checkpoint_every must be > 0 seconds, got {self.checkpoint_every}")
        for name, allowed in CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}")
        # The model's own checks (sizes, radial basis, cutoff), on a skeleton: nothing is computed.
        eqx.filter_eval_shape(Potential, **self.model_hyperparameters(1), key=jax.random.key(0))

    def model_hyperparameters(self, max_atomic_number: int) -> dict[str, Any]:
        """The keyword arguments of :class:`~eqx_mp.models.Potential` for this run.

        Arguments:
            max_atomic_number: The largest atomic number the model must accept (from the data).

        Returns:
            A dict for ``Potential(**hyperparameters, key=...)``.
        """
        return {**{k: getattr(self, k) for k in MODEL_FIELDS}, "max_atomic_number": max_atomic_number}


def _document_fields(cls: type) -> None:
    """Append an **Arguments** section generated from the field help texts to the docstring."""
    lines = [f"        {f.name}: {f.metadata['help'].rstrip('.')} (default ``{f.default!r}``)."
             for f in dataclasses.fields(cls)]
    cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n\n    Arguments:\n" + "\n".join(lines) + "\n"


_document_fields(TrainConfig)
