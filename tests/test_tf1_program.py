"""A TF1 graph-mode program runs with `import graphflow as tf` and gives NumPy's answers."""

from __future__ import annotations

import numpy as np

import graphflow as tf


def test_tf1_classifier_program() -> None:
    tf.reset_default_graph()
    tf.set_random_seed(1234)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((16, 6, 6, 1)).astype(np.float32)
    labels = rng.integers(0, 4, size=16)

    # --- the TF1 program, unchanged but for the import -------------------------------
    x = tf.placeholder(tf.float32, [None, 6, 6, 1], name="images")
    y = tf.placeholder(tf.int64, [None], name="labels")
    with tf.name_scope("conv"):
        k = tf.Variable(tf.truncated_normal([3, 3, 1, 4], stddev=0.3), name="kernel")
        conv = tf.nn.relu(tf.nn.conv2d(x, k, strides=[1, 1, 1, 1], padding="SAME"))
        pool = tf.nn.max_pool(conv, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1], padding="VALID")
    flat = tf.reshape(pool, [-1, 3 * 3 * 4])
    with tf.name_scope("dense"):
        w = tf.Variable(tf.random_normal([36, 4], stddev=0.2), name="w")
        b = tf.Variable(tf.zeros([4]), name="b")
        logits = tf.nn.bias_add(tf.matmul(flat, w), b)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    correct = tf.equal(tf.argmax(logits, 1), y)
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    probs = tf.nn.softmax(logits)
    top = tf.reduce_max(probs, axis=1, keepdims=True)
    step = tf.assign_sub(b, 0.1 * tf.reduce_mean(probs, axis=0))
    init = tf.global_variables_initializer()

    with tf.Session() as sess:
        sess.run(init)
        out = sess.run(
            {"loss": loss, "acc": accuracy, "probs": probs, "top": top},
            feed_dict={x: images, y: labels},
        )
        kv, wv, bv = sess.run([k, w, b])
        sess.run(step, feed_dict={x: images})
        b_after = sess.run(b)
    # ---------------------------------------------------------------------------------

    # The same computation written in NumPy.
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))
    conv_np = np.zeros((16, 6, 6, 4), np.float32)
    for i in range(6):
        for j in range(6):
            patch = padded[:, i : i + 3, j : j + 3, :]
            conv_np[:, i, j, :] = np.tensordot(patch, kv, axes=([1, 2, 3], [0, 1, 2]))
    conv_np = np.maximum(conv_np, 0)
    pool_np = conv_np.reshape(16, 3, 2, 3, 2, 4).max(axis=(2, 4))
    logits_np = pool_np.reshape(16, 36) @ wv + bv
    shifted = logits_np - logits_np.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    probs_np = np.exp(log_probs)

    np.testing.assert_allclose(out["probs"], probs_np, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["loss"], -log_probs[np.arange(16), labels].mean(), rtol=1e-4)
    assert out["acc"] == np.float32((logits_np.argmax(1) == labels).mean())
    np.testing.assert_allclose(out["top"], probs_np.max(axis=1, keepdims=True), rtol=1e-4)
    np.testing.assert_allclose(b_after, bv - 0.1 * probs_np.mean(axis=0), rtol=1e-4, atol=1e-6)
    assert kv.min() >= -0.6 and kv.max() <= 0.6  # truncated at two stddevs
