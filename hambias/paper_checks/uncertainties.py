"""What is uncertain in the reconstruction of the paper, reported as notes.

The list: docs/theory/uncertainties.md#uncertainties.

These are not numerical claims: the report lists them so that a reader knows
which conventions the other checks assume.  A note is never a pass.
"""

from __future__ import annotations

from ._core import group, make_check, note

NAME = "uncertainties"
TITLE = "Uncertainties of the reconstruction (notes)"
PAPER = "—"
SEED = 12

_NOTES = (
    ("theorem_numbers", "Theorem numbering: the GD+HYP flow is paper Thm 4.2 (= B.3), the HYP* "
     "flow B.6; checks are named by content."),
    ("mw_weight_decay", "Weight-decay scaling in the m⊙w closed form: −βt (arXiv v1) or −4βt "
     "(ICLR); hambias uses λ with exponent −4λt (docs/theory/mw-flow.md#mw-closed-form)."),
    ("gamma_convention", "γ convention: exact (m, w) flow 2√(x² + γ²) with γ = |m₀² − w₀²|/2; the "
     "paper writes √(θ² + γ²) (checked in mw_flow)."),
    ("l1_limit_x0", "Whether the paper restricts the L1 limit to x₀ = 0; the sign-anchored limit "
     "for x₀ ≠ 0 is ours (checked in l2_l1_interpolation)."),
    ("figure_normalisation", "The normalisation of the Bregman-shape figure (we use R_α(x)/R_α(1)) "
     "and the content of the sign-choice figure are reconstructions."),
    ("natural_gradient_pl_constant", "The exact natural-gradient statement and the constant in the "
     "PL rate (pl_rate checks both e^{−λt} and the refined e^{−λ∫(1 + α min|θ|)})."),
    ("beta_characterisation", "The β > 0 characterisation (argmin f + βH_α) is ours, verified "
     "numerically (explicit_bias_beta), not found in the sources."),
    ("appendix_d1_setup", "The Appendix D.1 set-up (dimensions, scales, step sizes, steps) follows "
     "the PILoT template; only the qualitative outcome is checked."),
    ("sign_flip_statistic", "The sign-flip statistic of the paper's figure (per step, or against "
     "initialisation): hambias plots both."),
    ("negative_alpha", "Negative α has no theory in the paper; hambias's box-barrier picture "
     "(docs/theory/negative-alpha.md#negative-alpha) holds only inside the box |θ| < 1/|α|."),
)


@group("§12", "the uncertainties of the reconstruction are listed")
def _notes(ctx):
    return [note(name, "§12", text) for name, text in _NOTES]


GROUPS = (_notes,)


run, main = make_check(NAME, TITLE, PAPER, GROUPS, SEED, __doc__)

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
