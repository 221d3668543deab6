"""hambias: theory and simulation of the implicit bias of optimizers, centred on HAM.

The data flows one way: problem → geometry → dynamics (flow, iterates) →
prediction → comparison → sweep / check → plots.  This module is the curated
public API; everything else is private or reachable through its submodule.
"""

from .compare import Comparison, compare, convergence_order
from .flow import BetaSchedule, FlowResult, flow_vector_field, solve_flow, stationarity_residual
from .geometry import (
    AbstractGeometry,
    Euclidean,
    HAMGeometry,
    PointwiseProduct,
    gamma_from_init,
    mw_flow_time,
)
from .iterates import IterateResult, run_iterates
from .methods import (
    GD,
    AbstractMethod,
    ExpStep,
    GDHyp,
    MirrorDescent,
    MWGradientDescent,
    OptaxMethod,
    Phased,
    make_method,
    method_names,
    register_method,
)
from .numeric_geometry import geometry_from_inverse_metric
from .optimizers import ham, ham_sam, ham_wrapper_faithful
from .predict import (
    CvxpyPredictor,
    Prediction,
    PredictionError,
    kkt_residuals,
    lasso,
    min_l1_interpolant,
    predict_limit,
    ridge,
)
from .problems import AbstractProblem, LinearRegression, LossProblem, RowSpace, sparse_regression
from .networks import DiagonalNetwork, diagonal_network
from .status import Status, StatusError
from .teacher_student import (
    SignIn,
    SuccessMap,
    TeacherStudent,
    balance_invariant,
    flow_success_map,
    iterate_success_map,
    predict_success,
    predicted_limit,
    success_boundary,
)
from .sweep import SweepConfig, load_config, open_sweep, phase_table, run_sweep, stability_boundary

__version__ = "0.1.0"

__all__ = [
    "AbstractGeometry",
    "AbstractMethod",
    "AbstractProblem",
    "balance_invariant",
    "compare",
    "Comparison",
    "convergence_order",
    "CvxpyPredictor",
    "DiagonalNetwork",
    "diagonal_network",
    "Euclidean",
    "ExpStep",
    "flow_success_map",
    "flow_vector_field",
    "FlowResult",
    "gamma_from_init",
    "GD",
    "GDHyp",
    "geometry_from_inverse_metric",
    "ham",
    "ham_sam",
    "ham_wrapper_faithful",
    "HAMGeometry",
    "IterateResult",
    "iterate_success_map",
    "kkt_residuals",
    "lasso",
    "make_method",
    "method_names",
    "LinearRegression",
    "load_config",
    "LossProblem",
    "min_l1_interpolant",
    "MirrorDescent",
    "mw_flow_time",
    "MWGradientDescent",
    "open_sweep",
    "OptaxMethod",
    "Phased",
    "phase_table",
    "PointwiseProduct",
    "predict_limit",
    "predict_success",
    "predicted_limit",
    "Prediction",
    "PredictionError",
    "register_method",
    "ridge",
    "RowSpace",
    "run_iterates",
    "run_sweep",
    "SignIn",
    "solve_flow",
    "BetaSchedule",
    "sparse_regression",
    "stability_boundary",
    "stationarity_residual",
    "Status",
    "StatusError",
    "success_boundary",
    "SuccessMap",
    "SweepConfig",
    "TeacherStudent",
    "__version__",
]
