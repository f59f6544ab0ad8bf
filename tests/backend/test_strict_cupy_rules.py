"""The strict backend refuses what CuPy 14 refuses, and behaves as CuPy where CuPy and NumPy differ.

Each rule here is one that nnfs's code could trip on the first GPU run while passing on the CPU:
the whole suite then runs on this backend (``NNFS_BACKEND=strict``), so it proves nnfs does not.
"""

import importlib.util
import json
import operator
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from nnfs.backend import cupy_api, get_backend, to_numpy
from nnfs.backend.strict import HostArrayError, StrictArray

ROOT = pathlib.Path(__file__).resolve().parents[2]
STRICT = get_backend("strict")
xp = STRICT.xp


def device(values, dtype="float64"):
    return STRICT.asarray(np.asarray(values, dtype=dtype))


def grid():
    return device(np.arange(12.0).reshape(3, 4))


# -- no implicit conversion to NumPy ---------------------------------------------------------------

@pytest.mark.parametrize("convert", [
    np.asarray, np.array, np.ascontiguousarray,
    lambda d: np.testing.assert_allclose(d, d),
    lambda d: np.testing.assert_array_equal(d, d),
    lambda d: np.lib.stride_tricks.as_strided(d, shape=(2,), strides=(8,)),
], ids=["asarray", "array", "ascontiguousarray", "testing.assert_allclose",
        "testing.assert_array_equal", "numpy-as_strided"])
def test_numpy_cannot_convert_a_device_array(convert):
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        convert(grid())


def test_numpy_functions_and_ufuncs_dispatch_to_the_device_versions_as_on_cupy():
    d = grid()
    for result in (np.sum(d), np.exp(d), np.concatenate([d, d]), np.maximum(d, 0.0), np.add.reduce(d)):
        assert isinstance(result, StrictArray)
    with pytest.raises(TypeError):  # CuPy has no insert: NumPy finds no implementation
        np.insert(d, 0, 1.0)


# -- only CuPy's names and keywords ------------------------------------------------------------------

@pytest.mark.parametrize("name", ["errstate", "seterr", "geterr"])
def test_names_cupy_lacks_do_not_exist(name):
    assert name not in cupy_api.module_names("cupy")
    with pytest.raises(AttributeError, match=f"CuPy 14.* has no cupy.{name}"):
        getattr(xp, name)


@pytest.mark.parametrize("call", [
    lambda d: xp.maximum(d, 0.0, where=d > 0),
    lambda d: np.maximum(d, 0.0, where=d > 0),
    lambda d: xp.exp(d, order="F"),
    lambda d: xp.add(d, d, subok=True),
    lambda d: d.sum(initial=0.0),
    lambda d: xp.sum(d, initial=0.0),
    lambda d: np.sum(d, initial=0.0),
    lambda d: d.max(initial=0.0),
    lambda d: d.mean(where=d > 0),
    lambda d: xp.zeros_like(d, device="cpu"),
    lambda d: xp.copy(d, subok=True),
    lambda d: d.item(0),
    lambda d: xp.lib.stride_tricks.as_strided(d, (2,), (8,), writeable=False),
    lambda d: xp.add.reduce(d, initial=0.0),
], ids=["ufunc-where", "numpy-ufunc-where", "ufunc-order", "ufunc-subok", "sum-initial",
        "xp.sum-initial", "numpy-sum-initial", "max-initial", "mean-where", "zeros_like-device",
        "copy-subok", "item-index", "as_strided-writeable", "reduce-initial"])
def test_keywords_cupy_lacks_are_refused(call):
    with pytest.raises(TypeError, match="CuPy 14"):
        call(grid())


# Keywords that bind to CuPy's signature, but that its code refuses (cupy_api.KEYWORDS_READ and
# REFUSED_UNLESS_NONE): einsum is f(*operands, **kwargs) and reads only dtype and optimize.
@pytest.mark.parametrize("call", [
    lambda d: xp.einsum("ij,ij->i", d, d, out=xp.empty(3)),
    lambda d: np.einsum("ij,ij->i", d, d, out=xp.empty(3)),
    lambda d: xp.einsum("ij,ij->i", d, d, order="C"),
    lambda d: xp.einsum("ij,ij->i", d, d, casting="unsafe"),
    lambda d: xp.meshgrid(d[0], d[1], copy=False, order="C"),
    lambda d: d.astype("float32", casting="same_kind"),
    lambda d: d.astype("float32", "K", "unsafe"),
    lambda d: d.astype("float32", subok=True),
    lambda d: xp.zeros_like(d, subok=False),
    lambda d: xp.full_like(d, 1.0, subok=True),
], ids=["einsum-out", "numpy-einsum-out", "einsum-order", "einsum-casting", "meshgrid-order",
        "astype-casting", "astype-casting-by-position", "astype-subok", "zeros_like-subok",
        "full_like-subok"])
def test_keywords_cupys_code_refuses_are_refused(call):
    with pytest.raises(TypeError, match="CuPy 14"):
        call(grid())


def test_what_cupy_has_works():
    d = grid()
    assert d.item is not None and device(3.0).item() == 3.0
    view = xp.lib.stride_tricks.as_strided(d, shape=(2, 2), strides=(32, 8))
    np.testing.assert_array_equal(to_numpy(view), [[0, 1], [4, 5]])
    np.testing.assert_array_equal(to_numpy(xp.sum(d, axis=0, keepdims=True)), [[12, 15, 18, 21]])
    assert xp.add(d, 1.0, dtype="float32").dtype == np.float32
    rows = xp.einsum("ij,ij->i", d, d, optimize=True, dtype="float32")
    np.testing.assert_allclose(to_numpy(rows), (np.arange(12.0).reshape(3, 4) ** 2).sum(axis=1))
    assert d.astype("float32", casting=None, subok=None).dtype == np.float32
    assert xp.zeros_like(d, subok=None).shape == (3, 4)


@pytest.mark.parametrize("name", ["resize", "setflags", "getfield", "ctypes", "to_device"])
def test_ndarray_attributes_cupy_lacks_do_not_exist(name):
    assert not hasattr(grid(), name)


def test_the_namespace_and_the_array_offer_exactly_what_was_recorded():
    recorded = cupy_api.module_names("cupy")
    assert set(dir(xp)) == set(recorded)
    for name in cupy_api.ndarray_methods():
        assert callable(getattr(StrictArray, name)), name
    public = {name for name in dir(StrictArray) if not name.startswith("_")}
    assert public == set(cupy_api.ndarray_methods()) | cupy_api.ndarray_attributes()


# -- operands ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("operand", [[1.0, 2.0, 3.0, 4.0], (1.0, 2.0, 3.0, 4.0), np.ones(4), np.array(2.0)],
                         ids=["list", "tuple", "numpy-array", "numpy-0-d"])
def test_ufuncs_take_device_arrays_and_scalars_only(operand):
    d = grid()
    for call in (lambda: xp.add(d, operand), lambda: d + operand, lambda: d * operand):
        with pytest.raises(HostArrayError):
            call()


def test_python_and_numpy_scalars_are_operands():
    d = device([1.0, 2.0], dtype="float32")
    for result in (d + 1, 2.5 * d, np.float32(2) * d, xp.maximum(d, np.float32(1.5))):
        assert isinstance(result, StrictArray) and result.dtype == np.float32


def test_reductions_give_0_d_device_arrays():
    d = grid()
    for result in (d.sum(), d.max(), d.argmax(), xp.sum(d), (d > 3).any(), d.mean()):
        assert isinstance(result, StrictArray) and result.ndim == 0


def test_what_numpy_answers_with_a_python_bool_or_int_cupy_answers_with_a_0_d_device_array():
    d = grid()
    for result, dtype in ((xp.allclose(d, d), np.bool_), (xp.array_equal(d, d), np.bool_),
                          (xp.array_equiv(d, d[0]), np.bool_), (xp.count_nonzero(d), np.int64),
                          (np.allclose(d, d), np.bool_), (np.count_nonzero(d), np.int64)):
        assert isinstance(result, StrictArray) and result.ndim == 0 and result.dtype == dtype
    assert not bool(xp.array_equal(d, d + 1)) and int(xp.count_nonzero(d)) == 11
    assert isinstance(xp.count_nonzero(d, axis=0), StrictArray)


def test_a_0_d_device_array_is_not_a_python_index():
    with pytest.raises(TypeError, match="not a Python index"):
        operator.index(device(1, dtype="int64"))


# -- elementwise results are C-ordered --------------------------------------------------------------

@pytest.mark.parametrize("elementwise", [
    lambda t: t + 1, lambda t: -t, lambda t: abs(t), lambda t: t * t, lambda t: np.exp(t),
    lambda t: xp.maximum(t, 5.0), lambda t: xp.where(t > 5, t, 0.0), lambda t: t > 5,
    lambda t: xp.sqrt(t), lambda t: t.clip(2.0, 6.0),
], ids=["add", "negative", "abs", "multiply", "numpy-exp", "maximum", "where", "greater", "sqrt", "clip"])
def test_elementwise_results_are_c_ordered_whatever_the_input_layout(elementwise):
    transposed = grid().T
    assert not transposed.flags.c_contiguous
    result = elementwise(transposed)
    assert result.flags.c_contiguous  # CuPy allocates a C-ordered output; NumPy would keep F
    same_values_in_c_order = device(np.ascontiguousarray(np.arange(12.0).reshape(3, 4).T))
    np.testing.assert_array_equal(to_numpy(result), to_numpy(elementwise(same_values_in_c_order)))


def test_what_takes_an_order_argument_keeps_numpys_layout_rule_and_views_stay_views():
    transposed = grid().T
    assert xp.copy(transposed, order="K").flags.f_contiguous
    assert transposed.astype("float32").flags.f_contiguous  # astype(order="K")
    assert xp.empty_like(transposed).flags.f_contiguous
    assert transposed.copy().flags.c_contiguous  # ndarray.copy(order="C")
    view = grid()[:, 1:3]
    view[...] = 0.0
    assert not view.flags.c_contiguous


# -- out-of-range integer indices wrap around ------------------------------------------------------

def test_integer_array_indices_wrap_around_where_numpy_raises():
    rows = np.arange(12.0).reshape(3, 4)
    with pytest.raises(IndexError):
        rows[np.array([0, 5])]
    d = grid()
    expected = rows[[0, 2, 2, 1]]
    for index in (device([0, 5, -4, 4], dtype="int64"), [0, 5, -4, 4]):
        np.testing.assert_array_equal(to_numpy(d[index]), expected)
    np.testing.assert_array_equal(to_numpy(d[..., device([4, 9], dtype="int64")]), rows[:, [0, 1]])
    np.testing.assert_array_equal(to_numpy(d[device([3], dtype="int64"), device([6], dtype="int64")]),
                                  rows[[0], [2]])
    with pytest.raises(IndexError):  # a Python integer is checked, as on CuPy
        d[3]


def test_assignment_take_take_along_axis_and_ufunc_at_wrap_too():
    d = grid()
    d[device([4], dtype="int64")] = -1.0  # row 4 of 3 is row 1
    np.testing.assert_array_equal(to_numpy(d)[1], -1.0)
    labels = device([0, 1, 2, 5], dtype="int64")  # 5 with 3 columns reads column 2
    table = device(np.arange(12.0).reshape(4, 3))
    np.testing.assert_array_equal(to_numpy(xp.take_along_axis(table, labels[:, None], axis=1)).ravel(),
                                  [0.0, 4.0, 8.0, 11.0])
    np.testing.assert_array_equal(to_numpy(xp.take(table, device([13], dtype="int64"))), [1.0])
    counts = device(np.zeros(3))
    xp.add.at(counts, device([0, 4, 5], dtype="int64"), 1.0)
    np.testing.assert_array_equal(to_numpy(counts), [1.0, 1.0, 1.0])


# -- where the list comes from ---------------------------------------------------------------------

def test_the_recorded_api_is_cupy_14():
    api = cupy_api.load()
    assert api["cupy_version"].startswith("14.")
    assert {"cupy", "cupy.linalg", "cupy.random", "cupy.fft", "cupy.lib.stride_tricks"} <= set(api["modules"])
    assert api["ndarray"]["methods"]["sum"] == ["axis=", "dtype=", "out=", "keepdims="]
    assert api["modules"]["cupy"]["add"]["params"] == ["x1", "x2", "/", "out=", "*", "casting=", "dtype="]


def _load_script():
    spec = importlib.util.spec_from_file_location("make_cupy_api", ROOT / "scripts" / "make_cupy_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("line, expected", [
    ("_ndarray_base.sum(self, axis=None, dtype=None, out=None, keepdims=False) -> _ndarray_base",
     ["axis=", "dtype=", "out=", "keepdims="]),
    ("_ndarray_base.swapaxes(self, Py_ssize_t axis1, Py_ssize_t axis2) -> _ndarray_base", ["axis1", "axis2"]),
    ("isfinite(x, /, out=None, \\*, casting='same_kind', dtype=None)",
     ["x", "/", "out=", "*", "casting=", "dtype="]),
    ("_ndarray_base.reshape(self, *shape, order='C', copy=None)", ["*shape", "order=", "copy="]),
    ("_ndarray_base.mdspan(self, *, index_type, allow_unsafe=False)", ["*", "index_type", "allow_unsafe="]),
    ("f(a, b=(1, 2), c='x,y')", ["a", "b=", "c="]),
    ("No signature here.", None),
])
def test_the_script_reads_cythons_docstring_signatures(line, expected):
    assert _load_script().from_docstring(line + "\n\nMore text.") == expected


def test_the_shipped_list_matches_an_installed_cupy(tmp_path):
    # Runs wherever CuPy is installed (no GPU needed): the list is what that CuPy has.
    cupy = pytest.importorskip("cupy")
    recorded = cupy_api.load()
    if cupy.__version__ != recorded["cupy_version"]:
        pytest.skip(f"CuPy {cupy.__version__} is installed; the list is of {recorded['cupy_version']}")
    out = tmp_path / "api.json"
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "make_cupy_api.py"), "--output", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    fresh = json.loads(out.read_text())
    for part in ("modules", "ndarray", "ufunc"):
        assert fresh[part] == recorded[part], part


@pytest.mark.parametrize("given", [{"x": 1.0}, {"y": 1.0}], ids=["x alone", "y alone"])
def test_where_with_one_of_x_and_y_is_refused_as_cupy_refuses_it(given):
    """NumPy took the None left out as an object value and gave an object array."""
    a = device([1.0, 0.0, 2.0])
    with pytest.raises(ValueError, match="^Must give either both or none of x and y$"):
        xp.where(a > 0, given.get("x"), given.get("y"))


# -- ufunc methods: CuPy implements them for some ufuncs only ------------------------------------

@pytest.mark.parametrize("call", [
    lambda d: xp.maximum.reduce(d),
    lambda d: np.maximum.reduce(d),
    lambda d: xp.minimum.accumulate(d),
    lambda d: xp.multiply.reduceat(d, device([0, 1], dtype="int64")),
    lambda d: xp.multiply.at(d, device([0], dtype="int64"), 2.0),
    lambda d: np.divide.at(d, device([0], dtype="int64"), 2.0),
], ids=["maximum.reduce", "numpy-maximum.reduce", "minimum.accumulate", "multiply.reduceat",
        "multiply.at", "numpy-divide.at"])
def test_ufunc_methods_cupy_lacks_are_refused(call):
    """cupy/_core/_kernel.pyx: reduce and accumulate exist for add and multiply, reduceat for add,
    at for the ufuncs with a scatter kernel; the others raise NotImplementedError."""
    with pytest.raises(NotImplementedError, match="not supported"):
        call(grid())


def test_ufunc_at_takes_the_dtypes_of_cupys_scatter_kernels():
    """cupy/_core/_routines_indexing.pyx (_scatter_op_single): subtract.at is int32/uint32 only."""
    with pytest.raises(TypeError, match="subtract.at only supports"):
        xp.subtract.at(grid(), device([0], dtype="int64"), 1.0)
    with pytest.raises(TypeError, match="add.at only supports"):
        xp.add.at(device([1, 2], dtype="int16"), device([0], dtype="int64"), 1)
    # add, maximum and minimum have no int64 kernel (the bitwise ones have): counts of int64 fail on CuPy.
    for ufunc in (xp.add, xp.maximum, xp.minimum):
        with pytest.raises(TypeError, match=f"{ufunc.name}.at only supports"):
            ufunc.at(device([1, 2], dtype="int64"), device([0], dtype="int64"), 1)
    xp.bitwise_or.at(device([1, 2], dtype="int64"), device([0], dtype="int64"), 4)
    counts = device([5, 5], dtype="int32")
    xp.subtract.at(counts, device([1, 1], dtype="int64"), 1)
    xp.maximum.at(grid(), device([0], dtype="int64"), 100.0)
    np.testing.assert_array_equal(to_numpy(counts), [5, 3])
    np.testing.assert_array_equal(to_numpy(xp.add.reduce(grid())), np.arange(12.0).reshape(3, 4).sum(axis=0))
    np.testing.assert_array_equal(to_numpy(xp.multiply.accumulate(device([1.0, 2.0, 3.0]))), [1.0, 2.0, 6.0])


# -- joining and building from sequences: device arrays only -------------------------------------

@pytest.mark.parametrize("call", [
    lambda d: xp.stack([d.sum(), 1.0]),
    lambda d: xp.concatenate([d[0], [1.0, 2.0]]),
    lambda d: xp.concatenate([d[0], d.sum()]),
    lambda d: xp.asarray([d.sum(), 0.0]),
    lambda d: xp.array([d[0], d[0, :2]]),
    lambda d: np.stack([d.sum(), 1.0]),
    lambda d: xp.asarray(dtype="float32", a=[d[0], [1.0]]),  # the sequence by keyword, after another
], ids=["stack-number", "concatenate-list", "concatenate-0-d", "asarray-mixed", "array-two-shapes",
        "numpy-stack-number", "asarray-mixed-by-keyword"])
def test_sequences_cupy_cannot_join_on_the_device_are_refused(call):
    """cupy.concatenate and cupy.stack take device arrays only (concatenate_method, _expand_dims);
    cupy.array joins a sequence on the device only when it holds device arrays of one shape, and
    hands any other to numpy.array, which calls their __array__ (cupy/_core/core.pyx)."""
    with pytest.raises(TypeError):
        call(grid())


def test_sequences_of_device_arrays_of_one_shape_are_joined():
    d = grid()
    for result, shape in ((xp.stack([d.sum(), d.max()]), (2,)), (xp.asarray([d.sum(), d.max()]), (2,)),
                          (xp.array([[d[0]], [d[1]]], dtype="float32"), (2, 1, 4)),
                          (xp.concatenate([d, d[:1]]), (4, 4)), (xp.asarray([[1, 2], [3, 4]]), (2, 2)),
                          (xp.hstack([d[0], 1.0]), (5,)),  # hstack makes each part an array first
                          (xp.concatenate([d.sum(), d[0]], axis=None), (5,))):  # axis=None ravels each first
        assert isinstance(result, StrictArray) and result.shape == shape
