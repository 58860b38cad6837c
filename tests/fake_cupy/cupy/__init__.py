"""A stand-in for CuPy, for testing astvmap's CuPy path on a machine without a GPU.

Only ``tests/test_backend_cupy.py`` puts it on the path, in a subprocess. Its
arrays are a NumPy subclass whose type says it comes from ``cupy`` (which is how
astvmap recognises CuPy arrays); its functions are NumPy's, counted per name, so
a test can see that the generated code called *this* module where it says ``np``
and how often arrays were copied "to the device".
"""

import numpy as _np

calls: dict[str, int] = {}


class ndarray(_np.ndarray):  # noqa: N801 - CuPy's name
    pass


ndarray.__module__ = "cupy"


def _count(name):
    calls[name] = calls.get(name, 0) + 1


def _device(x):
    if isinstance(x, _np.ndarray) and not isinstance(x, ndarray):
        return x.view(ndarray)
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return type(x)(*[_device(v) for v in x])
    if isinstance(x, (tuple, list)):
        return type(x)(_device(v) for v in x)
    return x


def _wrap(name, f):
    def call(*args, **kwargs):
        _count(name)
        return _device(f(*args, **kwargs))

    return call


def asarray(x, dtype=None):
    _count("asarray")
    return _np.array(x, dtype=dtype).view(ndarray)


def asnumpy(x):
    _count("asnumpy")
    return _np.array(x).view(_np.ndarray)


class _Linalg:
    def __getattr__(self, name):
        return _wrap("linalg." + name, getattr(_np.linalg, name))


linalg = _Linalg()


def __getattr__(name):
    if name == "errstate":  # CuPy has none
        raise AttributeError(name)
    obj = getattr(_np, name)
    if callable(obj) and not isinstance(obj, type):
        return _wrap(name, obj)
    return obj
