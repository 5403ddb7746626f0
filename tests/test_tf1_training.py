"""A TF1 training script runs with `import graphflow as tf`: it learns, saves and restores."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import graphflow as tf


def test_tf1_training_script(tmp_path: Path) -> None:
    tf.reset_default_graph()
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 5)).astype(np.float32) * 2.0
    labels_np = rng.integers(0, 3, 240)
    data = centers[labels_np] + rng.standard_normal((240, 5)).astype(np.float32)

    # --- the TF1 program, unchanged but for the import -------------------------------
    tf.set_random_seed(0)
    x = tf.placeholder(tf.float32, [None, 5], name="x")
    y = tf.placeholder(tf.int64, [None], name="y")
    with tf.name_scope("hidden"):
        w1 = tf.Variable(tf.truncated_normal([5, 32], stddev=0.3), name="weights")
        b1 = tf.Variable(tf.zeros([32]), name="biases")
        hidden = tf.nn.relu(tf.matmul(x, w1) + b1)
    with tf.name_scope("softmax_linear"):
        w2 = tf.Variable(tf.truncated_normal([32, 3], stddev=0.3), name="weights")
        b2 = tf.Variable(tf.zeros([3]), name="biases")
        logits = tf.matmul(hidden, w2) + b2
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits))
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32))
    global_step = tf.train.get_or_create_global_step()
    train_op = tf.train.AdamOptimizer(learning_rate=0.01).minimize(loss, global_step=global_step)
    saver = tf.train.Saver()
    init = tf.global_variables_initializer()

    with tf.Session() as sess:
        sess.run(init)
        init_fallbacks = sess.cache_info().fallbacks  # random initializers may run interpreted
        first_loss = sess.run(loss, feed_dict={x: data, y: labels_np})
        for _epoch in range(10):
            for start in range(0, 240, 24):
                batch = slice(start, start + 24)
                sess.run([train_op, loss], feed_dict={x: data[batch], y: labels_np[batch]})
        final_loss, final_accuracy = sess.run([loss, accuracy], feed_dict={x: data, y: labels_np})
        path = saver.save(sess, str(tmp_path / "model.ckpt"), global_step=global_step)
        step_fallbacks = sess.cache_info().fallbacks[len(init_fallbacks) :]
    # ---------------------------------------------------------------------------------

    assert step_fallbacks == ()  # the training step compiled
    assert final_loss < first_loss / 5, (first_loss, final_loss)
    assert final_accuracy > 0.9
    assert path.endswith("model.ckpt-100.npz")
    with tf.Session(mode="interpreted") as sess:
        saver.restore(sess, tf.train.latest_checkpoint(str(tmp_path)))
        assert sess.run(global_step) == 100
        restored_loss = sess.run(loss, feed_dict={x: data, y: labels_np})
    np.testing.assert_allclose(restored_loss, final_loss, rtol=1e-4)
