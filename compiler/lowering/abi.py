"""The calling convention between the runtime and generated code.

The entry function of a compiled graph takes NumPy arrays as `PyObject*`
(passing an array object costs far less than asking NumPy for its data
pointer from Python) and reads each array's data pointer inside the
generated code, at the offset of that field in NumPy's array struct. The
offset is found once per process by probing a known array, never assumed.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

from graphflow import errors


@functools.cache
def array_data_offset() -> int:
    """Byte offset of the data pointer in a NumPy array object."""
    probe = np.arange(7, dtype=np.int64)
    base = id(probe)
    want = probe.ctypes.data
    for offset in range(8, 128, 8):
        if ctypes.c_void_p.from_address(base + offset).value == want:
            return offset
    raise errors.InternalError("could not find the data pointer in NumPy's array struct")


def check_layout() -> None:
    """Confirms the probed offset on fresh arrays of other dtypes and shapes."""
    offset = array_data_offset()
    for dtype in (np.float32, np.float64, np.int32, np.bool_):
        array = np.zeros((3, 5), dtype)
        if ctypes.c_void_p.from_address(id(array) + offset).value != array.ctypes.data:
            raise errors.InternalError("NumPy's array struct has an unexpected layout")
