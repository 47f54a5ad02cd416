"""Summarise how closely sklearn-mixed reproduces lme4 on every stored reference.

Runs the lme4 reference tests in this process and prints, per quantity, the
largest discrepancy observed over all models (in the units of its tolerance,
described in ``tests/_reference.py``) as a Markdown table::

    python tools/lme4_agreement.py
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNITS = {
    "loglik": "absolute",
    "aic": "absolute",
    "bic": "absolute",
    "beta": "x its lme4 standard error",
    "se": "relative",
    "varcomp": "relative (x sigma^2 where lme4's value is 0)",
    "ranef": "x the factor's standard deviation",
    "condvar": "relative",
    "fitted": "x sigma",
    "heldout": "x sigma",
}


def main():
    tests = [
        str(ROOT / "tests" / "test_lme4_reference.py"),
        str(ROOT / "tests" / "test_lme4_extra.py"),
        str(ROOT / "tests" / "test_lme4_issue8.py"),  # weights, general terms, ...
    ]
    code = pytest.main(["-q", "-p", "no:cacheprovider", *tests])
    observed = sys.modules["_reference"].OBSERVED
    models = sorted({d.model for d in observed})
    print(f"\n{len(models)} model fits compared with lme4 1.1-31 (pytest exit code {code})\n")
    print("| quantity | largest discrepancy | units | tolerance | where |")
    print("| --- | --- | --- | --- | --- |")
    for quantity, units in UNITS.items():
        rows = [d for d in observed if d.quantity == quantity]
        worst = max(rows, key=lambda d: d.value / d.tolerance)
        where = f"{worst.model} {worst.what}".strip()
        print(f"| {quantity} | {worst.value:.1e} | {units} | {worst.tolerance:g} | {where} |")
    return code


if __name__ == "__main__":
    sys.exit(main())
