"""gf.train.Saver: .npz checkpoints round trip; a failed restore says why and changes nothing."""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import graphflow as gf
from graphflow import errors

HERE = "test_saver.py:"


def _model() -> dict[str, Any]:
    with gf.name_scope("dense"):
        w = gf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3), name="w")
        b = gf.Variable(np.zeros(3, np.float64), name="b")
    step = gf.train.get_or_create_global_step()
    return {"w": w, "b": b, "step": step, "init": gf.global_variables_initializer()}


def _values(sess: gf.Session, m: dict[str, Any]) -> list[np.ndarray]:
    return sess.run([m["w"], m["b"], m["step"]])


def _assert_same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def _raises(cls: type[Exception], *fragments: str) -> Any:
    return pytest.raises(cls, match="(?s)" + ".*".join(re.escape(f) for f in fragments))


@pytest.mark.parametrize("mode", ["interpreted", "compiled"])
def test_round_trip(tmp_path: Path, mode: str) -> None:
    m = _model()
    change = gf.group(
        gf.assign(m["w"], m["w"] * 3.0 + 1.0), gf.assign_add(m["b"], gf.ones([3], gf.float64))
    )
    saver = gf.train.Saver()
    with gf.Session(mode=mode) as sess:
        sess.run(m["init"])
        sess.run(change)
        sess.run(gf.assign(m["step"], np.int64(42)))
        saved = _values(sess, m)
        path = saver.save(sess, str(tmp_path / "model.ckpt"), global_step=m["step"])
        assert path == str(tmp_path / "model.ckpt-42.npz")
        with np.load(path, allow_pickle=False) as archive:
            assert sorted(archive.files) == ["dense/b", "dense/w", "global_step"]
            assert archive["dense/b"].dtype == np.float64
        sess.run(change)
        assert not np.array_equal(sess.run(m["w"]), saved[0])
        saver.restore(sess, path)
        _assert_same(_values(sess, m), saved)
        sess.run(change)  # compiled code keeps working on the restored values
        np.testing.assert_array_equal(sess.run(m["w"]), saved[0] * 3 + 1)
    with gf.Session(mode=mode) as fresh:  # a new session needs no initializer
        saver.restore(fresh, str(tmp_path / "model.ckpt-42"))  # the prefix works too
        _assert_same(_values(fresh, m), saved)
    assert gf.train.latest_checkpoint(str(tmp_path)) == path
    assert gf.train.checkpoint_exists(str(tmp_path / "model.ckpt-42"))


def test_var_list_dict_and_list(tmp_path: Path) -> None:
    m = _model()
    with gf.Session(mode="interpreted") as sess:
        sess.run(m["init"])
        by_name = gf.train.Saver({"weights": m["w"]})
        path = by_name.save(sess, str(tmp_path / "a.npz"))
        assert path == str(tmp_path / "a.npz")
        with np.load(path) as archive:
            assert archive.files == ["weights"]
        only_b = gf.train.Saver([m["b"]])
        path_b = only_b.save(sess, str(tmp_path / "b"), global_step=7)
        assert path_b == str(tmp_path / "b-7.npz")
        sess.run(gf.assign(m["w"], gf.zeros([2, 3])))
        by_name.restore(sess, path)
        np.testing.assert_array_equal(sess.run(m["w"]), np.arange(6).reshape(2, 3))


def test_max_to_keep_deletes_old_checkpoints(tmp_path: Path) -> None:
    m = _model()
    saver = gf.train.Saver(max_to_keep=2)
    with gf.Session(mode="interpreted") as sess:
        sess.run(m["init"])
        paths = [saver.save(sess, str(tmp_path / "ckpt"), global_step=i) for i in range(4)]
    assert saver.last_checkpoints == paths[2:]
    assert [os.path.exists(p) for p in paths] == [False, False, True, True]
    assert gf.train.latest_checkpoint(str(tmp_path)) == paths[-1]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp")]


def _saved(tmp_path: Path) -> tuple[dict[str, Any], gf.train.Saver, str]:
    m = _model()
    saver = gf.train.Saver()
    with gf.Session(mode="interpreted") as sess:
        sess.run(m["init"])
        path = saver.save(sess, str(tmp_path / "model"))
    return m, saver, path


def _restore_fails_cleanly(
    m: dict[str, Any], saver: gf.train.Saver, path: str, cls: type[Exception], *fragments: str
) -> None:
    """The restore raises `cls` naming `fragments`, and the session's values do not change."""
    with gf.Session(mode="interpreted") as sess:
        sess.run(m["init"])
        sess.run(gf.group(gf.assign(m["w"], gf.fill([2, 3], 9.0)), gf.assign(m["step"], 5)))
        before = _values(sess, m)
        with _raises(cls, HERE, *fragments):
            saver.restore(sess, path)
        _assert_same(_values(sess, m), before)


def _rewrite(path: str, **changes: Any) -> None:
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    for k, v in changes.items():
        if v is None:
            del arrays[k.replace("__", "/")]
        else:
            arrays[k.replace("__", "/")] = v
    np.savez(path, **arrays)


def test_restore_reports_every_mismatch_by_name(tmp_path: Path) -> None:
    m, saver, path = _saved(tmp_path)
    _rewrite(
        path,
        dense__w=np.zeros((3, 2), np.float32),  # shape
        dense__b=None,  # missing
        global_step=np.int32(3),  # dtype
        extra=np.ones(2),  # unexpected
    )
    _restore_fails_cleanly(
        m,
        saver,
        path,
        errors.InvalidArgumentError,
        "does not match",
        "missing 'dense/b'",
        "unexpected 'extra'",
        "'dense/w' has shape (3, 2), the variable (2, 3)",
        "'global_step' has dtype int32, the variable int64",
    )


def test_restore_rejects_bad_files(tmp_path: Path) -> None:
    m, saver, path = _saved(tmp_path)
    _restore_fails_cleanly(
        m, saver, str(tmp_path / "nope"), errors.NotFoundError, "not a valid checkpoint", "nope"
    )
    data = Path(path).read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    _restore_fails_cleanly(m, saver, str(truncated), errors.InvalidArgumentError, "corrupt")
    text = tmp_path / "text.npz"
    text.write_text("model_checkpoint_path: nothing\n")
    _restore_fails_cleanly(m, saver, str(text), errors.InvalidArgumentError, "cannot read")
    npy = tmp_path / "single.npy"
    np.save(npy, np.zeros(3))
    _restore_fails_cleanly(m, saver, str(npy), errors.InvalidArgumentError, "not an .npz")
    corrupt = tmp_path / "corrupt.npz"
    flipped = bytearray(data)
    start = data.index(b"\x93NUMPY") + 128 + 4  # inside the first array's data
    flipped[start : start + 4] = b"\xff" * 4  # the CRC no longer matches
    corrupt.write_bytes(bytes(flipped))
    _restore_fails_cleanly(m, saver, str(corrupt), errors.InvalidArgumentError, "corrupt")


def test_restore_never_unpickles(tmp_path: Path) -> None:
    m, saver, path = _saved(tmp_path)

    class Boom:
        def __reduce__(self) -> Any:
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    pickled = tmp_path / "pickled.npz"
    with zipfile.ZipFile(path) as good, zipfile.ZipFile(pickled, "w") as bad:
        for name in good.namelist():
            if name != "dense/b.npy":
                bad.writestr(name, good.read(name))
        array = np.empty(1, dtype=object)
        array[0] = Boom()
        bad.writestr("dense/b.npy", _npy_bytes(array))
    _restore_fails_cleanly(m, saver, str(pickled), errors.InvalidArgumentError, "pickled")
    assert not (tmp_path / "pwned").exists()


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def test_save_errors(tmp_path: Path) -> None:
    m = _model()
    saver = gf.train.Saver()
    with gf.Session(mode="interpreted") as sess:
        with _raises(errors.FailedPreconditionError, "uninitialized value"):
            saver.save(sess, str(tmp_path / "x"))
        sess.run(m["init"])
        with _raises(errors.NotFoundError, HERE, "directory does not exist"):
            saver.save(sess, str(tmp_path / "missing" / "x"))
        with _raises(errors.InvalidArgumentError, HERE, "needs the Session"):
            saver.save("not a session", str(tmp_path / "x"))
        with _raises(errors.InvalidArgumentError, HERE, "save_path=None"):
            saver.restore(sess, None)
    assert os.listdir(tmp_path) == []
    with _raises(errors.InvalidArgumentError, HERE, "may only hold gf.Variables"):
        gf.train.Saver([m["w"] * 2])
    with _raises(errors.InvalidArgumentError, HERE, "two variables are saved under the name"):
        gf.train.Saver([m["w"], m["w"]])
    gf.reset_default_graph()
    with _raises(errors.InvalidArgumentError, HERE, "No variables to save"):
        gf.train.Saver()
    empty = gf.train.Saver(allow_empty=True)
    with gf.Session() as sess:
        assert empty.save(sess, str(tmp_path / "e")) is None
