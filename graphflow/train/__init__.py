"""gf.train: optimizers, the global step and checkpoints (TF1's tf.train)."""

from graphflow.train.optimizer import GATE_GRAPH, GATE_NONE, GATE_OP, Optimizer
from graphflow.train.optimizers import (
    AdagradOptimizer,
    AdamOptimizer,
    GradientDescentOptimizer,
    MomentumOptimizer,
    RMSPropOptimizer,
)
from graphflow.train.saver import Saver, checkpoint_exists, latest_checkpoint
from graphflow.train.training_util import (
    create_global_step,
    get_global_step,
    get_or_create_global_step,
    global_step,
)

__all__ = [
    "GATE_GRAPH",
    "GATE_NONE",
    "GATE_OP",
    "AdagradOptimizer",
    "AdamOptimizer",
    "GradientDescentOptimizer",
    "MomentumOptimizer",
    "Optimizer",
    "RMSPropOptimizer",
    "Saver",
    "checkpoint_exists",
    "create_global_step",
    "get_global_step",
    "get_or_create_global_step",
    "global_step",
    "latest_checkpoint",
]
