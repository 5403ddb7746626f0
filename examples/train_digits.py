"""Train an MLP and a small CNN on scikit-learn's 8x8 digits with graphflow (TF1 style).

    python examples/train_digits.py                 # both models
    python examples/train_digits.py --model cnn --epochs 15 --seed 1

The whole training step (forward, gradients, Adam update) runs as one
compiled native call per batch. Needs scikit-learn for the data set:
pip install 'graphflow[examples]'.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import graphflow as tf

IMAGE = 8  # the digits are 8x8 grey images
CLASSES = 10


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits(seed: int) -> Data:
    """The 1797 digits scaled to [0, 1], split 80/20 (stratified, seeded)."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        print(
            "This example needs scikit-learn for the digits data set:\n"
            "    pip install 'graphflow[examples]'",
            file=sys.stderr,
        )
        sys.exit(1)
    digits = sklearn_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.2, random_state=seed, stratify=y
    )
    return Data(x_train, y_train, x_test, y_test)


# -- models: each maps a [batch, 64] float placeholder to [batch, 10] logits ----------------
def dense(x: tf.Tensor, units: int, name: str, activation: Callable | None = None) -> tf.Tensor:
    fan_in = x.shape.as_list()[-1]
    with tf.name_scope(name):
        w = tf.Variable(
            tf.truncated_normal([fan_in, units], stddev=np.sqrt(2.0 / fan_in)), name="w"
        )
        b = tf.Variable(tf.zeros([units]), name="b")
        y = tf.matmul(x, w) + b
    return activation(y) if activation else y


def mlp(x: tf.Tensor) -> tf.Tensor:
    hidden = dense(x, 128, "hidden1", tf.nn.relu)
    hidden = dense(hidden, 64, "hidden2", tf.nn.relu)
    return dense(hidden, CLASSES, "logits")


def cnn(x: tf.Tensor) -> tf.Tensor:
    images = tf.reshape(x, [-1, IMAGE, IMAGE, 1])
    with tf.name_scope("conv"):
        k = tf.Variable(tf.truncated_normal([3, 3, 1, 32], stddev=np.sqrt(2.0 / 9)), name="kernel")
        b = tf.Variable(tf.zeros([32]), name="b")
        conv = tf.nn.relu(tf.nn.conv2d(images, k, strides=[1, 1, 1, 1], padding="SAME") + b)
        pool = tf.nn.max_pool(conv, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="VALID")
    flat = tf.reshape(pool, [-1, 4 * 4 * 32])
    hidden = dense(flat, 128, "dense", tf.nn.relu)
    return dense(hidden, CLASSES, "logits")


MODELS = {"mlp": (mlp, 1e-3, 0.95), "cnn": (cnn, 2e-3, 0.97)}


def train(
    name: str, data: Data, seed: int, epochs: int, batch_size: int = 32, mode: str = "compiled"
) -> float:
    """Trains one model from scratch; prints each epoch; returns the final test accuracy."""
    build, learning_rate, _ = MODELS[name]
    graph = tf.Graph()
    with graph.as_default():
        tf.set_random_seed(seed)
        x = tf.placeholder(tf.float32, [None, IMAGE * IMAGE], name="x")
        y = tf.placeholder(tf.int64, [None], name="y")
        logits = build(x)
        loss = tf.reduce_mean(
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        )
        accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32))
        step = tf.train.get_or_create_global_step()
        train_op = tf.train.AdamOptimizer(learning_rate).minimize(loss, global_step=step)
        init = tf.global_variables_initializer()

    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    with tf.Session(graph=graph, mode=mode) as sess:
        sess.run(init)
        # Only the training step and the evaluation count: random initializers may run
        # interpreted once without slowing anything down.
        init_fallbacks = len(sess.cache_info().fallbacks)
        n = len(data.x_train)
        for epoch in range(1, epochs + 1):
            order = rng.permutation(n)
            total = 0.0
            for first in range(0, n, batch_size):
                batch = order[first : first + batch_size]
                _, batch_loss = sess.run(
                    [train_op, loss], {x: data.x_train[batch], y: data.y_train[batch]}
                )
                total += float(batch_loss) * len(batch)
            test_accuracy = float(sess.run(accuracy, {x: data.x_test, y: data.y_test}))
            print(
                f"{name}  epoch {epoch:2d}/{epochs}  train loss {total / n:.4f}  "
                f"test accuracy {test_accuracy:.4f}  ({time.perf_counter() - start:.1f} s)",
                flush=True,
            )
        fallbacks = sess.cache_info().fallbacks[init_fallbacks:]
    if fallbacks:
        print(f"{name}: parts ran interpreted: {'; '.join(fallbacks)}")
    return test_accuracy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["mlp", "cnn", "both"], default="both")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="default: 20 (mlp), 12 (cnn)")
    parser.add_argument("--mode", choices=["compiled", "interpreted"], default="compiled")
    args = parser.parse_args(argv)
    data = load_digits(args.seed)
    print(f"digits: {len(data.x_train)} train, {len(data.x_test)} test images")
    names = ["mlp", "cnn"] if args.model == "both" else [args.model]
    ok = True
    for name in names:
        epochs = args.epochs or {"mlp": 20, "cnn": 12}[name]
        start = time.perf_counter()
        accuracy = train(name, data, args.seed, epochs, mode=args.mode)
        target = MODELS[name][2]
        verdict = "reached" if accuracy >= target else "MISSED"
        print(
            f"{name}: test accuracy {accuracy:.4f} in {time.perf_counter() - start:.1f} s "
            f"({verdict} the {target:.0%} target)"
        )
        ok = ok and accuracy >= target
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
