"""Training the LeNet on Fashion-MNIST: one model, or a population of models
trained together in one compiled program.

:func:`train` runs a Python loop over a jitted step (progress every
``log_every`` minibatches), or each epoch as one ``lax.scan`` program
(``scan_epochs``: one dispatch an epoch, the default on accelerators; the
same numbers bit for bit), with the training set held on the device and each epoch's
example order drawn from the seed. It logs the chapter's metrics (train loss
and accuracy, averaged over the epoch so far, every ``log_every``
minibatches; test accuracy every epoch), shows a progress bar, writes
``metrics.json`` (with the data files' paths and SHA-256s) and a checkpoint
into the run directory after every epoch, each atomically, and resumes a
killed run from its last complete epoch, ending with the same numbers as an
uninterrupted run. A checkpoint carries the SHA-256 of its contents: a
corrupted or truncated one is refused, naming the file, never resumed.

A population (:func:`train` with several configs) vmaps the step over the
model axis: every model has its own seed (initialisation and data order),
its own schedule and its own optimizer settings, and the models are sharded
over all devices when there are several.

A pure core and a thin shell (after purejaxrl's ``make_train(config)`` and
flax's mnist example):

* :func:`make_program` closes over what fixes the compiled programs (batch
  size, steps per epoch, the kind of optimizer and of schedule) and returns
  the pure step, evaluation and example order; :func:`init_state` and
  :func:`make_hyper` give every number as arrays (seeds, schedules,
  optimizer settings), so new values never recompile;
  :func:`compile_program` compiles it; :func:`run_epoch` trains one epoch
  and returns its metrics as arrays. None of them reads or writes files.
* :func:`train` is the shell: data, placement on the devices, compile,
  progress bar, checkpoints and metrics.json. Its :class:`RunResult` holds
  typed tables of arrays (:class:`EpochMetrics`, :class:`CurvePoints`, shape
  (models, epochs or points)); the JSON rows are produced from them.

A config holds a :class:`gdjax.schedules.Schedule` (or an optax
``count -> lr`` callable), never a spec string: specs are parsed once, at
the edge (the CLI parses ``--schedule`` with the chapter's values, in
:mod:`gdjax.lessons.chapter`). metrics.json and checkpoints store each
schedule's canonical ``spec``, and resuming compares specs.

One job a module: :mod:`gdjax.train.config` (:class:`TrainConfig` and its
checks), :mod:`gdjax.train.results` (the typed tables and :class:`RunResult`),
:mod:`gdjax.train.checkpoint` (the checkpoint format, saving, loading and
resuming), :mod:`gdjax.train.core` (the pure program) and
:mod:`gdjax.train.loop` (:func:`train` and :func:`train_many`); each imports
only those before it. Their public names are re-exported here.
"""

from gdjax.train.checkpoint import CHECKPOINT as CHECKPOINT
from gdjax.train.checkpoint import CheckpointError as CheckpointError
from gdjax.train.checkpoint import check_resume as check_resume
from gdjax.train.checkpoint import load_checkpoint as load_checkpoint
from gdjax.train.config import OPTIMIZERS as OPTIMIZERS
from gdjax.train.config import SEED_LIMIT as SEED_LIMIT
from gdjax.train.config import TrainConfig as TrainConfig
from gdjax.train.core import EpochOutput as EpochOutput
from gdjax.train.core import Program as Program
from gdjax.train.core import compile_program as compile_program
from gdjax.train.core import init_state as init_state
from gdjax.train.core import make_hyper as make_hyper
from gdjax.train.core import make_program as make_program
from gdjax.train.core import run_epoch as run_epoch
from gdjax.train.loop import train as train
from gdjax.train.loop import train_many as train_many
from gdjax.train.results import CurvePoints as CurvePoints
from gdjax.train.results import EpochMetrics as EpochMetrics
from gdjax.train.results import RunResult as RunResult

__all__ = [
    "OPTIMIZERS",
    "SEED_LIMIT",
    "CheckpointError",
    "CurvePoints",
    "EpochMetrics",
    "EpochOutput",
    "Program",
    "RunResult",
    "TrainConfig",
    "check_resume",
    "compile_program",
    "init_state",
    "load_checkpoint",
    "make_hyper",
    "make_program",
    "run_epoch",
    "train",
    "train_many",
]
