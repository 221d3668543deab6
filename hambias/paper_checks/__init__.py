"""Paper checks: one module per claim of the theory pages, with ``run(...)`` and ``main(argv)``.

The theory pages start at docs/theory/index.md#theory.  The registry :data:`CHECKS` lists
the checks in the order of their section numbers (§1–§12, which
docs/theory/index.md#section-map maps to pages); :func:`run_check` runs one.  Modules are
named by content; the paper's theorem number (where known) is in each module's docstring.
``hambias check`` (:mod:`hambias.report`) runs them all.

>>> from hambias.paper_checks import CHECKS
>>> "implicit_bias" in CHECKS
True
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ._core import FAIL, NOT_CHECKED, NOTE, PASS, CheckResult, Claim

__all__ = ["CHECKS", "load", "run_check", "CheckResult", "Claim", "PASS", "FAIL",
           "NOT_CHECKED", "NOTE"]

#: check name → the sections (§n, see docs/theory/index.md#section-map) it covers; the check is
#: the module ``hambias.paper_checks.<name>``.
CHECKS: dict[str, str] = {
    "inverse_metrics": "§1, §10",
    "ham_step": "§2",
    "ham_flow_limit": "§3",
    "mirror_potential": "§4",
    "mw_flow": "§5",
    "exp_step_theorem": "§6",
    "implicit_bias": "§7",
    "l2_l1_interpolation": "§8",
    "anchored_limit": "§8",
    "sign_stability": "§9",
    "single_neuron_sign_flips": "§1, §9, §11",
    "pl_rate": "§10",
    "local_rate": "§10",
    "explicit_bias_beta": "§11",
    "stability_threshold": "§11",
    "negative_alpha_box": "§11",
    "regression_experiment": "§11",
    "sgd_bias": "§7",
    "switch_off_decay": "§11",
    "mirror_maps": "§4, §7, §8, §10",
    "uncertainties": "§12",
}


def load(name: str):
    """Import the module of check ``name``.

    Raises:
        ValueError: an unknown check name (the message lists the known ones).
    """
    if name not in CHECKS:
        raise ValueError(f"unknown check {name!r}; expected one of {', '.join(CHECKS)}")
    return importlib.import_module(f"{__name__}.{name}")


def run_check(name: str, *, quick: bool = False, out: Path | None = None,
              seed: int | None = None) -> CheckResult:
    """Run check ``name`` (float64 must be enabled) and return its :class:`CheckResult`."""
    mod = load(name)
    kw = {} if seed is None else {"seed": seed}
    return mod.run(quick=quick, out=out, **kw)
