"""The kernels compiled ahead of time at install (codegen/aot.py) against the same kernels
through numba's JIT, on models that use every instruction; a process that uses them never
imports numba."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tweed.runtime.model import poisson_saturation

from tests.convert.test_hs3_unbinned import _rich_model
from tests.models import rich_workspace
from tweed import api
from tweed.codegen import aot, numba_backend
from tweed.config import jit_kernels

CODEGEN = Path(aot.__file__).parent
BUILT = sorted(CODEGEN.glob("_aot_*"))


def test_the_install_built_the_kernels():
    """pip install compiles them (setup.py); a stale build (kernels edited since) is unused."""
    if jit_kernels():
        pytest.skip("TWEED_KERNELS=jit")
    name = aot.module_name()
    here = any(p.name.startswith(name + ".") for p in BUILT)
    if not here and aot.installed_path(name) is None:
        if BUILT:
            pytest.skip("the kernel sources changed since the install: pip install -e . rebuilds them")
        pytest.fail("no tweed/codegen/_aot_* module: the install did not compile the kernels (see setup.py)")
    assert numba_backend.KERNELS == "aot"


def _models(tmp_path):
    yield "histfactory", api.load(rich_workspace())
    yield "simplified", api.simplified([10, 12, 7], [9.0, 11.0, 8.0], [1.0, 2.0, 0.5],
                                       covariance=[[4.0, 1.0, 0.5], [1.0, 5.0, 0.3], [0.5, 0.3, 3.0]],
                                       third_moment=[1.0, 0.5, 0.2])
    yield "unbinned", api.load(str(_rich_model(tmp_path, weights=True)[0]))


@pytest.mark.skipif(numba_backend.KERNELS != "aot", reason="the AOT kernels are not in use")
def test_aot_and_jit_kernels_agree(tmp_path):
    from tweed.codegen import numba_kernels as J
    from tweed.codegen import numba_minimize as JM

    A = numba_backend.K
    assert A is not J
    for name, model in _models(tmp_path):
        prog = model.kernels.program
        arr, n, v0 = prog.arrays, prog.n_params, prog.val0
        d = np.ascontiguousarray(model.data, float)
        lg = poisson_saturation(d)
        x = np.ascontiguousarray(model.inits() * 1.03)
        vec = np.linspace(-1.0, 1.0, n)
        out = {}
        for tag, K, M in (("aot", A, A), ("jit", J, JM)):
            g, g2, hv = np.empty(n), np.empty(n), np.empty(n)
            H, Jac = np.zeros((n, n)), np.zeros((prog.n_data, n))
            e = np.full(prog.n_data, np.nan)
            f = K.nll(*arr, v0.copy(), x, d, lg)
            fg = K.nll_grad(*arr, v0.copy(), np.zeros_like(v0), x, d, lg, g)
            K.hvp(*arr, v0.copy(), np.zeros_like(v0), np.zeros_like(v0), np.zeros_like(v0), x, vec, d, lg, g2, hv)
            K.hessian_columns(*arr, v0, x, d, lg, np.arange(n), H)
            K.rate_jacobian(*arr, v0.copy(), np.zeros_like(v0), x, Jac)
            K.expected(*arr, v0.copy(), x, e)
            y = np.empty(n)
            lo, hi = (np.ascontiguousarray(b, float) for b in model.bounds().T)
            fit = M.minimize(*arr, v0.copy(), np.zeros_like(v0), x.copy(), np.arange(n), x.copy(), lo, hi,
                             np.eye(n), d, lg, 1e-8, 500, y, 6)
            out[tag] = (f, fg, g, hv, H, Jac, e, fit[0], y)
        a, j = out["aot"], out["jit"]
        assert a[0] == pytest.approx(j[0], rel=1e-13), name
        assert a[1] == pytest.approx(j[1], rel=1e-13), name
        for k, what in ((2, "gradient"), (3, "Hessian-vector product"), (4, "Hessian"), (5, "rate Jacobian")):
            np.testing.assert_allclose(a[k], j[k], rtol=1e-10, atol=1e-12, err_msg=f"{name}: {what}")
        np.testing.assert_allclose(a[6], j[6], rtol=1e-13, err_msg=f"{name}: expected data")
        assert a[7] == pytest.approx(j[7], rel=1e-12), name
        if name != "unbinned":  # (its mixture has flat directions: same minimum, other points)
            np.testing.assert_allclose(a[8], j[8], rtol=1e-6, atol=1e-6, err_msg=f"{name}: best fit")


@pytest.mark.skipif(numba_backend.KERNELS != "aot", reason="the AOT kernels are not in use")
def test_a_cls_run_never_imports_numba(tmp_path):
    ws = tmp_path / "ws.json"
    ws.write_text(json.dumps(rich_workspace()))
    code = ("import sys; from tweed.cli.main import main; sys.argv = ['tweed', 'cls', %r]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
            "assert 'numba' not in sys.modules and 'llvmlite' not in sys.modules, 'numba was imported'\n") % str(ws)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "CLs_obs" in run.stdout


@pytest.mark.skipif(numba_backend.KERNELS != "aot", reason="the AOT kernels are not in use")
def test_the_compiled_kernels_release_the_gil():
    """While a compiled batch of fits runs, another Python thread keeps running (it could not
    if the call held the GIL): toys, Hessian columns and ranking refits use threads."""
    import threading
    import time

    model = api.load(rich_workspace())
    prog = model.kernels.program
    n, v0 = prog.n_params, prog.val0
    rows = 400
    x = np.ascontiguousarray(model.inits())
    fulls = np.tile(x, (rows, 1))
    d = np.tile(np.ascontiguousarray(model.data, float), (rows, 1))
    lo, hi = (np.ascontiguousarray(b, float) for b in model.bounds().T)
    out = (np.empty((rows, n)), np.empty(rows), np.empty(rows, dtype=np.int64), np.empty(rows, dtype=np.int64))
    args = (*prog.arrays, v0, fulls, np.arange(n), fulls * 1.01, lo, hi, np.eye(n), d, poisson_saturation(d), 1e-10, 500,
            *out, 6)
    t = time.perf_counter()
    numba_backend.K.minimize_rows(*args, 0, 20)
    per_row = (time.perf_counter() - t) / 20
    rows_needed = min(rows, max(20, int(0.3 / per_row)))  # a call of ~0.3 s
    beats, stop = [], threading.Event()

    def beat():
        while not stop.is_set():
            beats.append(time.perf_counter())

    thread = threading.Thread(target=beat)
    thread.start()
    time.sleep(0.01)
    t0 = time.perf_counter()
    numba_backend.K.minimize_rows(*args, 0, rows_needed)
    t1 = time.perf_counter()
    stop.set()
    thread.join()
    inside = [b for b in beats if t0 + 0.2 * (t1 - t0) < b < t1 - 0.2 * (t1 - t0)]
    assert inside, f"no other thread ran during a {t1 - t0:.2f} s kernel call: it held the GIL"
    assert (out[2][:rows_needed] == 0).all()


@pytest.mark.skipif(numba_backend.KERNELS != "aot", reason="the AOT kernels are not in use")
def test_toys_and_ranking_never_import_numba(tmp_path):
    """Toys (fits batched over threads) and a ranking use the compiled kernels only."""
    code = ("import sys\nfrom tests.models import rich_workspace\nfrom tweed import api\n"
            "from tweed.runtime.toys import toy_hypotest\nfrom tweed.runtime.ranking import ranking\n"
            "m = api.load(rich_workspace())\nr = toy_hypotest(m, 1.0, ntoys=50, seed=3)\n"
            "assert 0 <= r.CLs_obs <= 1\nranking(m)\n"
            "assert 'numba' not in sys.modules and 'llvmlite' not in sys.modules, 'numba was imported'\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stderr
