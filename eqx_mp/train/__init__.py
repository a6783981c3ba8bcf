"""Train an equivariant potential (energies + forces) and evaluate or reload it.

Command line (``eqx-mp-train`` is the same as ``python -m eqx_mp.train``)::

    python -m eqx_mp.train [--data FILE] [--time-budget S] [--output DIR] ...   # train
    python -m eqx_mp.train predict --model runs/latest [--data FILE]          # evaluate

``--help`` lists every flag; they are generated from :class:`TrainConfig`.

Python API: :class:`TrainConfig`, :func:`train`, :class:`TrainResult`, :func:`evaluate`,
:func:`predict`, :func:`error_metrics`, :func:`baseline_predictor`, :func:`baseline_metrics`,
:func:`format_metrics`, :func:`parity_plot`,
:func:`save_model`, :func:`load_model`, :func:`main`.

Training needs the ``train`` extra (optax, tqdm, matplotlib); loading and evaluating a saved
model needs only the core dependencies.

The package is split by concern: :mod:`~eqx_mp.train.config` (the configuration),
:mod:`~eqx_mp.train.batches` (split, graphs, padded batches of one shape),
:mod:`~eqx_mp.train.e0s` (reference energies), :mod:`~eqx_mp.train.optim` (optimiser, schedule),
:mod:`~eqx_mp.train.step` (loss, compiled step, EMA), :mod:`~eqx_mp.train.state` (what a
checkpoint holds), :mod:`~eqx_mp.train.loop` (the epochs), :mod:`~eqx_mp.train.run` (a whole
run), :mod:`~eqx_mp.train.evaluate` (metrics), :mod:`~eqx_mp.train.checkpoint` (files),
:mod:`~eqx_mp.train.report` (log, ``run.json``), :mod:`~eqx_mp.train.plot`,
:mod:`~eqx_mp.train.cli`.

Outputs: ``DIR/model.eqx`` (written by :func:`eqx_mp.io.save`: one JSON header line with the
:class:`~eqx_mp.models.Potential` class and hyper-parameters, then the leaves; the averaged
weights of the best validation epoch), ``DIR/checkpoint.eqx`` (and ``checkpoint.prev.eqx``: the
state to ``--resume`` from), ``DIR/log.jsonl`` (one JSON record per epoch), ``DIR/run.json``
(the configuration, the data split, the metrics next to the baselines, the history) and
``DIR/parity.png`` (the parity plot of the test split).
"""

from .checkpoint import load_model as load_model
from .checkpoint import save_model as save_model
from .cli import build_parser as build_parser
from .cli import build_predict_parser as build_predict_parser
from .cli import main as main
from .config import TrainConfig as TrainConfig
from .evaluate import baseline_metrics as baseline_metrics
from .evaluate import baseline_predictor as baseline_predictor
from .evaluate import error_metrics as error_metrics
from .evaluate import evaluate as evaluate
from .evaluate import format_metrics as format_metrics
from .evaluate import predict as predict
from .plot import parity_plot as parity_plot
from .run import TrainResult as TrainResult
from .run import train as train

__all__ = [
    "TrainConfig",
    "TrainResult",
    "train",
    "evaluate",
    "predict",
    "parity_plot",
    "error_metrics",
    "baseline_predictor",
    "baseline_metrics",
    "save_model",
    "load_model",
    "format_metrics",
    "build_parser",
    "build_predict_parser",
    "main",
]
