"""The cvxpy cross-check of the Newton prediction (the only module that imports cvxpy).

Each geometry supplies its own DCP form (:meth:`~hambias.AbstractGeometry.cvxpy_potential`,
``cvxpy_conjugate``, ``cvxpy_regulariser``); this module assembles the problem:

* primal (β = 0):  min R(x) − ∇R(x₀)·x  s.t.  Ax = y;
* dual (β = 0, when the geometry has only a conjugate form):
  max λᵀy − R*(z)  s.t.  z = ∇R(x₀) + Aᵀλ,  and x = ∇R*(z);
* penalised (β > 0):  min ‖Ax − y‖²/(2d) + βH(x).

y, ∇R(x₀) and β are ``cp.Parameter`` s (DPP), so only the first solve compiles.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ._certificate import equality_residuals, penalised_residual
from ._oracle import Oracle
from ..status import Status
from ._result import CVXPY_KKT_TOL, CVXPY_SOLVER_TOL, Prediction, finish, frozen

__all__ = ["CvxpyPredictor", "FormInaccurate", "cvxpy_module", "solver_options"]


class FormInaccurate(ValueError):
    """The geometry's DCP form would be inaccurate at this scale (predict_limit then
    falls back to Newton and says so)."""

# Clarabel sometimes stalls just short of 1e-10 ("optimal_inaccurate" or a numerical
# error); the solve is then repeated at 10x and 100x the tolerance, and the message says so
# (the independent certificate still has to pass).
_RETRY_FACTOR = 10.0
_RETRIES = 2


def cvxpy_module():
    """Import cvxpy lazily (it costs ~2 s and is absent on some accelerator images)."""
    try:
        import cvxpy as cp
    except ImportError as err:  # pragma: no cover - cvxpy is a dependency
        raise ImportError("the cvxpy solver needs the cvxpy package (pip install cvxpy)") from err
    return cp


def solver_options(name: str, tol: float) -> dict:
    """Named tolerances of the supported cvxpy solvers."""
    if name == "CLARABEL":
        return dict(tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol, tol_ktratio=tol, max_iter=500)
    if name == "SCS":
        return dict(eps_abs=tol, eps_rel=tol, max_iters=200_000)
    if name == "ECOS":
        return dict(abstol=tol, reltol=tol, feastol=tol, max_iters=500)
    raise ValueError(f"cvxpy_solver must be 'CLARABEL', 'SCS' or 'ECOS', got {name!r}")


class CvxpyPredictor:
    """The cvxpy model of a prediction, compiled once, solved for many (y, x₀, β).

    The DCP form comes from the geometry (primal form if it has one, else the dual form
    of its conjugate); the objective is multiplied by ``geometry.cvxpy_scale()`` so that
    the interior-point solver works on O(1) numbers.  The object holds the compiled
    problem; it is not a result and returns fresh immutable :class:`Prediction` s.

    Args:
        geometry: an AbstractGeometry with a DCP form (Euclidean, HAMGeometry,
            PointwiseProduct, or a user geometry that implements one).
        A: design matrix (d, n), d < n for β = 0.
        penalised: build the β > 0 form (needs ``cvxpy_regulariser``).
        solver: cvxpy solver name, ``"CLARABEL"`` (default), ``"SCS"`` or ``"ECOS"``.
        tol: the solver's gap and feasibility tolerances (default 1e-10).
        kkt_tol: the certificate a solution must pass (default 1e-6).
        x_scale: the solution's scale max|x| (some forms cancel at small scales and refuse).

    Raises:
        ValueError: a geometry without a DCP form (the message says to use Newton), or a
            form that is inaccurate at this scale.

    >>> import numpy as np
    >>> from hambias import HAMGeometry
    >>> pr = CvxpyPredictor(HAMGeometry(1.0), np.array([[1.0, 2.0]]))
    >>> p = pr.solve(np.array([3.0]), throw=False)   # exact: x = (0.5, 1.25)
    >>> bool(np.allclose(p.x, [0.5, 1.25], atol=1e-5)), p.kkt_residual < 1e-5
    (True, True)
    """

    def __init__(self, geometry, A, *, penalised: bool = False, solver: str = "CLARABEL",
                 tol: float = CVXPY_SOLVER_TOL, kkt_tol: float = CVXPY_KKT_TOL,
                 x_scale: float = 1.0):
        cp = cvxpy_module()
        A = np.asarray(A, dtype=np.float64)
        if A.ndim != 2:
            raise ValueError(f"A must have shape (d, n), got {A.shape}")
        d, n = A.shape
        self._tol, self._solver, self._kkt_tol = tol, solver, kkt_tol
        self._options = solver_options(solver, tol)
        self._A, self._geometry, self._penalised = A, geometry, penalised
        self._oracle = Oracle(geometry)
        self._y = cp.Parameter(d, name="y")
        self._c = cp.Parameter(n, name="grad_R_x0")
        self._beta = cp.Parameter(nonneg=True, name="beta")
        self._scale = float(geometry.cvxpy_scale())
        self._dual_form = False
        x = cp.Variable(n)
        self._vars = dict(x=x)
        name = type(geometry).__name__
        try:
            if penalised:
                reg, cons = geometry.cvxpy_regulariser(cp, x)
                obj = self._scale * cp.sum_squares(A @ x - self._y) / (2 * d) \
                    + self._beta * (self._scale * reg)
                self._eq = None
                self._problem = cp.Problem(cp.Minimize(obj), cons)
                return
            try:
                pot, cons = geometry.cvxpy_potential(cp, x, x_scale=x_scale)
            except ValueError as err:
                raise FormInaccurate(str(err)) from None
            except NotImplementedError:
                lam, z = cp.Variable(d), cp.Variable(n)
                obj = self._scale * (lam @ self._y - geometry.cvxpy_conjugate(cp, z))
                self._vars = dict(lam=lam, z=z)
                self._dual_form = True
                self._problem = cp.Problem(cp.Maximize(obj), [z == self._c + A.T @ lam])
                return
        except NotImplementedError as err:
            raise ValueError(f"the cvxpy solver needs a DCP form of {name}: {err}; use "
                             f"solver='newton' (it needs only the geometry's maps)") from None
        self._eq = A @ x == self._y
        objective = cp.Minimize(self._scale * pot - self._scale * (self._c @ x))
        self._problem = cp.Problem(objective, [self._eq, *cons])

    def solve(self, y, x0=None, *, beta: float = 0.0, throw: bool = True) -> Prediction:
        """Solve for targets y (and x₀ for β = 0, β for the penalised form); see predict_limit."""
        from ..problems import LinearRegression

        A = self._A
        d, n = A.shape
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (d,):
            raise ValueError(f"y must have shape ({d},), got {y.shape}")
        beta = float(beta)
        if not (np.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        if self._penalised != (beta > 0):
            raise ValueError(
                f"this CvxpyPredictor was built with penalised={self._penalised}; got beta={beta}")
        x0 = np.zeros(n) if x0 is None else np.asarray(x0, dtype=np.float64)
        if x0.shape != (n,) or not self._oracle.in_domain(x0):
            raise ValueError("x0 must be finite, of shape (n,) and inside the domain of the "
                             "geometry")
        self._y.value = y
        self._c.value = self._oracle.mirror(x0)
        self._beta.value = beta
        rs = None if beta > 0 else LinearRegression(A, y).row_space()
        t0 = time.perf_counter()
        notes = ""
        name = f"cvxpy:{self._solver}"
        best = None
        # The certificate decides, not the solver's status: an "optimal_inaccurate" point
        # that passes it is accepted; one that fails it (or a solver error) is re-solved
        # at 10x, 100x the tolerance, and the most accurate point is kept.
        for tol in self._tol * _RETRY_FACTOR ** np.arange(_RETRIES + 1):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # status says it
                    self._problem.solve(solver=self._solver, **solver_options(self._solver, tol))
                status = self._problem.status
            except Exception as err:  # noqa: BLE001 - cvxpy.SolverError and friends
                status = f"solver_error: {err}"
            stats = self._problem.solver_stats
            iters = int(stats.num_iters) if stats is not None and stats.num_iters is not None else 0
            if status not in ("optimal", "optimal_inaccurate"):
                notes += (f"{name} returned status {status.split(':')[0]!r} (not optimal) "
                          f"at tolerance {tol:g}. ")
                if best is None:
                    best = dict(x=np.full(n, np.nan), lam=np.full(d, np.nan), p=np.inf,
                                q=np.inf, status=Status.SOLVER_FAILURE, iters=iters)
                if not status.startswith("solver_error"):
                    break
                continue
            x, lam = self._point(A, y, d, beta)
            if beta > 0:
                p, q = 0.0, penalised_residual(self._oracle, A, y, x, beta)
            else:
                p, q = equality_residuals(self._oracle, rs, y, x, x0)
            ok = max(p, q) <= self._kkt_tol
            cand = dict(x=x, lam=lam, p=p, q=q,
                        status=Status.SUCCESS if ok else Status.CERTIFICATE,
                        iters=iters)
            if best is None or not np.isfinite(best["p"]) or max(p, q) < max(best["p"], best["q"]):
                best = cand
            if ok:
                notes += f"status {status!r} at tolerance {tol:g}. "
                break
            notes += (f"status {status!r} at tolerance {tol:g}: KKT residual {max(p, q):.2e} "
                      f"above tolerance {self._kkt_tol:g}. ")
            if status == "optimal":  # a looser tolerance would only be less accurate
                break
        seconds = time.perf_counter() - t0
        kkt = max(best["p"], best["q"])
        msg = f"{notes}{name}: {best['status'].name}; KKT residual {kkt:.2e}"
        return finish(
            dict(x=frozen(best["x"]), dual=frozen(best["lam"]), solver=name,
                 status=best["status"], message=msg, primal_residual=best["p"],
                 dual_residual=best["q"], iterations=best["iters"], beta=beta,
                 geometry=self._geometry, x0=frozen(x0), seconds=seconds),
            throw,
        )

    def _point(self, A, y, d, beta):
        """(x, λ) from the solved cvxpy problem."""
        if self._dual_form:
            lam = np.asarray(self._vars["lam"].value)
            _, x, _ = self._oracle.dual_point(self._c.value + A.T @ lam)
            return x, lam
        x = np.asarray(self._vars["x"].value)
        if beta > 0:
            return x, (A @ x - y) / d
        return x, -np.asarray(self._eq.dual_value) / self._scale
