"""The examples and the documentation's code run, and print what they promise.

Every ``examples/*.py`` runs in a subprocess (``MPLBACKEND=Agg``, so no
window opens); the ``plot_*`` examples must draw at least one figure, and
are skipped without matplotlib, an optional dependency.  The
```` ```python ```` blocks of ``README.md`` and ``docs/*.md`` run too, each
document's blocks in order in one process, so the snippets users copy keep
working.  The subprocesses are started together, as
many at a time as there are CPUs, when the first test of this module needs one.
"""

import importlib.util
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
TIMEOUT = 120  # seconds per subprocess; each takes a few


# Runs a plot example and reports, after it, how many figures it drew.
FIGURE_COUNTER = """
import runpy, sys
import matplotlib.figure
created = []
_init = matplotlib.figure.Figure.__init__
def _counting_init(self, *args, **kwargs):
    created.append(1)
    _init(self, *args, **kwargs)
matplotlib.figure.Figure.__init__ = _counting_init
sys.argv = [sys.argv[1]]
runpy.run_path(sys.argv[0], run_name="__main__")
print(f"figures drawn: {len(created)}")
"""


def _python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
DOCUMENTS = [
    path
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    if path.is_file() and _python_blocks(path.read_text(encoding="utf-8"))
]

# Lines each example must print (REML criteria as lme4 prints them, 4 decimals).
EXPECTED_OUTPUT = {
    "demo.py": [
        "REML criterion at convergence: 1786.4651",  # (a) sleepstudy, (1 | Subject)
        "95% of subject intercepts lie in a +- 1.96 tau = 251.41 +- 72.76",
        "REML criterion at convergence: 330.8606",  # (b) Penicillin, crossed
        "REML criterion at convergence: 246.9907",  # (c) Pastes, nested
        # partial_fit over 8 chunks equals fit in memory (6 decimals)
        "fit on all 7185 rows: logLik -23320.199127; 8 chunks with partial_fit: -23320.199127",
        # glmer(use ~ age + I(age^2) + urban + livch + (1 | district), Contraception,
        # binomial): logLik -1186.364, district sd 0.4752 (lme4 1.1-31)
        "logLik -1186.364 (lme4 -1186.364), district sd 0.4752 (lme4 0.4752)",
        "(batch:cask is nested in batch)",
        "REML criterion at convergence: 46640.3983",  # (d) Hsb82, correlated
        "REML criterion at convergence: 46640.6630",  # (d) Hsb82, diagonal
        "REML criterion at convergence: 1743.6283",  # (e) sleepstudy, (Days | Subject)
        "lme4 1.1-31 reports",
        "R^2 with groups",
        "sd_Days|Subject               [    3.801,     8.753]  lme4 [    3.801,     8.753]",
        "Days         t   6.771  df  17.000  p 3.26e-06  lmerTest df 17.000, p 3.26e-06",
        "lme4: Chisq 42.1393, p 7.07e-10",
        # lmer(Weight ~ Time + I(Time^2) + (Time | Pig), dietox): logLik -2131.234
        "Weight ~ Time + I(Time^2) + (Time | Pig): logLik -2131.2340 (lme4 -2131.2340)",
    ],
    "plot_sleepstudy.py": [
        "REML criterion at convergence: 1743.6283",
        "95% of subject slopes lie in 10.47 +- 11.61",
    ],
    "plot_penicillin.py": [
        "REML criterion at convergence: 330.8606",
        "95% of the measurements of one plate and sample lie within +- 1.08 mm",
    ],
    "plot_hsb82.py": [
        "REML criterion at convergence: 46640.3983",
        "95% of school ses slopes lie in 2.39 +- 1.26",
    ],
    "plot_inference.py": [
        "sd_Days|Subject                 3.801    8.753",  # lme4's profile interval
        "Days: df 17.00, p 3.26e-06",  # lmerTest's Satterthwaite test
        "likelihood ratio 42.14 on 2 df, p = 7.1e-10",  # lme4's anova
    ],
    "plot_glmm.py": [
        # lme4: glmer(use ~ age + I(age^2) + urban + livch + (1 | district),
        # Contraception, binomial): logLik -1186.364, district sd 0.4752
        "2388.7286  2433.2673 -1186.3643  2372.7286",
        "district sd on the log-odds scale: 0.475",
    ],
    "plot_formula_selection.py": [
        # lmer(Weight ~ Time + I(Time^2) + (Time | Pig), dietox): logLik -2131.234
        # (tests/data/formula/a_quadratic_slope.json, lme4 1.1-31)
        "logLik -2131.2340 (lme4 -2131.2340)",
        "best for later weeks: Weight ~ poly(Time, 3) + (Time | Pig)",
        "predicted weights at week 13: [104.5 106.3]",
    ],
    "plot_encoder.py": [
        "73421 ratings; levels: s 2972, d 1128, dept 14",
        # lmer(y ~ 1 + (1 | s) + (1 | d) + (1 | dept), InstEval) (lme4 1.1-31, the
        # model behind the encoder; tools/make_insteval_encoder_reference.R):
        # variances s 0.10657, d 0.26757, dept 0.00672, residual 1.38707
        "s            0.107    0.326  0.060",
    ],
    "plot_mixed_effects.py": [
        "3002 training rows in 150 groups; 1498 test rows of seen groups, 1500 of 50 unseen",
    ],
    "plot_diagnostics.py": [
        "REML criterion at convergence: 1743.6283",
        "subject 335: own slope -2.88 ms/day, mixed-model slope -0.28 (population 10.47)",
        "residuals beyond 3 sigma (76.8 ms): 3",
    ],
}

# Lines the documents' snippets must print.
EXPECTED_SNIPPET_OUTPUT = {
    # the last: lmer(Reaction ~ Days + (Days | Subject), sleepstudy) logLik, fitted with Dask
    "README.md": ["REML criterion at convergence: 1743.6283", "[253.7 273.3 293. ]", "-871.8141"],
    "lme4_users.md": ["[('batch:cask', 'batch')]"],
    "new_groups.md": ["True"],
    "group_shrinkage.md": ["'mixedeffectsencoder__user_mode' 'mixedeffectsencoder__user_sd'"],
    # lmer(Reaction ~ Days + (Days | Subject), sleepstudy): logLik -871.8141 (lme4 1.1-31)
    "scaling.md": ["180 rows, logLik -871.81", "logLik -871.81"],
    "five_minutes.md": [
        "theta = 0.8078 = tau / sigma = 0.8078",
        "plate a, sample A: 25.96 +- 1.08 mm",
        "std. dev. of the mixed-model slopes:  0.28",
    ],
}

README_COMMANDS = [
    'pip install -e ".[tests]" && python examples/demo.py',
    'pip install -e ".[tests,dask]" && python -m pytest -q',
]


def _run_python(args):
    """Run ``python *args`` from the project root; the CompletedProcess."""
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """name -> Future of the CompletedProcess, for every example and document."""
    jobs = {}
    for path in EXAMPLES:
        if path.name.startswith("plot_"):
            if HAS_MATPLOTLIB:
                jobs[path.name] = ["-c", FIGURE_COUNTER, str(path)]
        else:
            jobs[path.name] = [str(path)]
    snippets = tmp_path_factory.mktemp("snippets")
    for path in DOCUMENTS:
        script = snippets / f"{path.stem}_snippets.py"
        script.write_text("\n\n".join(_python_blocks(path.read_text("utf-8"))), "utf-8")
        jobs[path.name] = [str(script)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = {name: pool.submit(_run_python, args) for name, args in jobs.items()}
        yield futures
        pool.shutdown(cancel_futures=True)


def _check(result, expected, what):
    assert result.returncode == 0, (
        f"{what} failed (exit code {result.returncode}):\n{result.stdout[-3000:]}\n"
        f"{result.stderr[-3000:]}"
    )
    missing = [line for line in expected if line not in result.stdout]
    assert not missing, f"{what} did not print {missing!r}; output:\n{result.stdout[-3000:]}"


def test_every_example_is_checked():
    assert {path.name for path in EXAMPLES} == set(EXPECTED_OUTPUT)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, runs):
    if path.name.startswith("plot_") and not HAS_MATPLOTLIB:
        pytest.skip("matplotlib is not installed (optional: pip install 'sklearn-mixed[plot]')")
    result = runs[path.name].result()
    _check(result, EXPECTED_OUTPUT.get(path.name, []), f"examples/{path.name}")
    if path.name.startswith("plot_"):  # a gallery example shows figures
        drawn = re.search(r"figures drawn: (\d+)", result.stdout)
        assert drawn and int(drawn.group(1)) >= 1, f"examples/{path.name} drew no figure"


def test_documents_with_snippets_are_found():
    assert "README.md" in {path.name for path in DOCUMENTS}


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_document_snippets_run(path, runs):
    result = runs[path.name].result()
    _check(result, EXPECTED_SNIPPET_OUTPUT.get(path.name, []), f"the python blocks of {path.name}")


def test_readme_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = re.search(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)
    assert first_block is not None and first_block.group(1) == "bash"
    lines = first_block.group(2).splitlines()
    assert len(lines) == 2
    for line, command in zip(lines, README_COMMANDS, strict=True):
        assert line.startswith(command + " "), line
        assert "#" in line[len(command) :], f"command not commented: {line!r}"
    before = text[: first_block.start()].strip().splitlines()
    assert len(before) <= 1, "only a title line may precede the commands"
