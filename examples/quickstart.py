"""A first graphflow program: a small classifier built as a graph, then run in a Session.

Run it with `python examples/quickstart.py`. It builds a two-layer network in
TF1 style, runs it on a batch, checks the result against NumPy, and shows the
error message you get for a bad feed.
"""

from __future__ import annotations

import numpy as np

import graphflow as gf


def build(num_features: int = 4, num_hidden: int = 16, num_classes: int = 3):
    """The graph: placeholders, seeded variables, and the ops between them."""
    gf.set_random_seed(0)
    x = gf.placeholder(gf.float32, shape=[None, num_features], name="x")
    labels = gf.placeholder(gf.int64, shape=[None], name="labels")
    with gf.name_scope("hidden"):
        w1 = gf.Variable(gf.random_normal([num_features, num_hidden], stddev=0.5), name="w")
        b1 = gf.Variable(gf.zeros([num_hidden]), name="b")
        h = gf.nn.relu(gf.matmul(x, w1) + b1)
    with gf.name_scope("output"):
        w2 = gf.Variable(gf.random_normal([num_hidden, num_classes], stddev=0.5), name="w")
        b2 = gf.Variable(gf.zeros([num_classes]), name="b")
        logits = gf.matmul(h, w2) + b2
    probs = gf.nn.softmax(logits, name="probs")
    loss = gf.reduce_mean(
        gf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits), name="loss"
    )
    accuracy = gf.reduce_mean(gf.cast(gf.equal(gf.argmax(logits, axis=1), labels), gf.float32))
    return x, labels, probs, loss, accuracy, (w1, b1, w2, b2)


def main() -> None:
    x, labels, probs, loss, accuracy, variables = build()
    rng = np.random.default_rng(0)
    batch = rng.standard_normal((8, 4)).astype(np.float32)
    targets = rng.integers(0, 3, size=8)

    with gf.Session() as sess:
        sess.run(gf.global_variables_initializer())
        p, l, a = sess.run([probs, loss, accuracy], feed_dict={x: batch, labels: targets})
        w1, b1, w2, b2 = sess.run(list(variables))

    # The same computation in NumPy gives the same answer.
    h = np.maximum(batch @ w1 + b1, 0)
    logits = h @ w2 + b2
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p, expected, rtol=1e-5, atol=1e-6)

    print("probabilities of the first 3 examples:")
    print(np.array2string(p[:3], precision=3))
    print(f"loss {l:.4f}, accuracy {a:.2f} (untrained), matches NumPy: yes")

    # Errors point at your own line and say what came and what was expected.
    try:
        with gf.Session() as sess:
            sess.run(gf.global_variables_initializer())
            sess.run(probs, feed_dict={x: np.ones((2, 5), np.float32)})
    except gf.errors.InvalidArgumentError as e:
        print("a bad feed is reported as:\n  " + str(e))


if __name__ == "__main__":
    main()
