"""hambias: theory and simulation of the implicit bias of optimizers, centred on HAM.

The data flows one way: problem → geometry → dynamics (flow, iterates) →
prediction → comparison → sweep / check → plots.  This module is the curated
public API; everything else is private or reachable through its submodule.
"""

from .geometry import (
    AbstractGeometry,
    Euclidean,
    HAMGeometry,
    PointwiseProduct,
    gamma_from_init,
    mw_flow_time,
)
from .iterates import (
    GD,
    ExpStep,
    GDHyp,
    IterateResult,
    MirrorDescent,
    MWGradientDescent,
    OptaxMethod,
    run_iterates,
)
from .optimizers import ham, ham_sam, ham_wrapper_faithful
from .problems import AbstractProblem, LinearRegression, LossProblem, sparse_regression
from .sweep import SweepConfig, load_config, open_sweep, phase_table, run_sweep, stability_boundary

__version__ = "0.1.0"

__all__ = [
    "AbstractGeometry",
    "AbstractProblem",
    "Euclidean",
    "ExpStep",
    "GD",
    "GDHyp",
    "IterateResult",
    "MWGradientDescent",
    "MirrorDescent",
    "OptaxMethod",
    "HAMGeometry",
    "LinearRegression",
    "LossProblem",
    "PointwiseProduct",
    "SweepConfig",
    "gamma_from_init",
    "ham",
    "ham_sam",
    "ham_wrapper_faithful",
    "load_config",
    "open_sweep",
    "phase_table",
    "mw_flow_time",
    "run_iterates",
    "run_sweep",
    "sparse_regression",
    "stability_boundary",
    "__version__",
]
