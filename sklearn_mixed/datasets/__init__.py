"""Small real data sets for linear and generalized linear mixed models.

Each loader returns a fresh :class:`pandas.DataFrame` read from a CSV file shipped
with the package (see ``sklearn_mixed/datasets/data/README.md`` for provenance).
Grouping factors and other categorical columns are returned as strings (never as
numbers, so that e.g. the sleepstudy subject ``"308"`` is a label, not a quantity);
their dtype is ``object`` or pandas' string dtype depending on the pandas version.
Rows are in the order of the original R data sets.

The first five data sets come from the R package lme4 (version 1.1-31), ``Hsb82``
and ``Contraception`` from the R package mlmRev, ``dietox`` from the R package
geepack.
"""

from importlib import resources

import pandas as pd

__all__ = [
    "load_contraception",
    "load_dietox",
    "load_dyestuff",
    "load_dyestuff2",
    "load_hsb82",
    "load_insteval",
    "load_pastes",
    "load_penicillin",
    "load_sleepstudy",
]


def _load(filename, factors):
    """Read ``data/<filename>`` (gzipped if it ends in ``.gz``) with the columns
    ``factors`` as strings."""
    source = resources.files(__package__) / "data" / filename
    with source.open("rb") as f:
        compression = "gzip" if filename.endswith(".gz") else None
        df = pd.read_csv(f, dtype=dict.fromkeys(factors, str), compression=compression)
    return df


def load_sleepstudy():
    """Load the sleepstudy data: reaction times in a sleep deprivation study.

    Average reaction time per day of 18 subjects who were restricted to 3 hours
    of time in bed per night. Days 0 and 1 were adaptation and training, day 2
    the baseline; sleep deprivation started after day 2. Each subject was
    measured on 10 consecutive days.

    Returns
    -------
    data : pandas.DataFrame of shape (180, 3)
        Columns:

        - ``Reaction`` (float): average reaction time on a psychomotor
          vigilance task, in milliseconds.
        - ``Days`` (int): days of sleep deprivation, 0 to 9.
        - ``Subject`` (str): subject identifier, 18 levels (``"308"``, ...,
          ``"372"``), 10 rows each.

    Notes
    -----
    Canonical lme4 model (random intercept and slope per subject)::

        Reaction ~ Days + (Days | Subject)

    Also fitted with only a random intercept, ``Reaction ~ Days + (1 | Subject)``,
    and with independent intercept and slope,
    ``Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)``.

    Provenance: R package lme4 (1.1-31), data set ``sleepstudy``: a subset (the
    3-hour time-in-bed group, first 10 days) of the study in Belenky, G.,
    Wesensten, N. J., Thorne, D. R., Thomas, M. L., Sing, H. C., Redmond, D. P.,
    Russo, M. B. and Balkin, T. J. (2003). Patterns of performance degradation
    and restoration during sleep restriction and subsequent recovery: a sleep
    dose-response study. *Journal of Sleep Research* 12, 1-12.

    Examples
    --------
    >>> from sklearn_mixed.datasets import load_sleepstudy
    >>> df = load_sleepstudy()
    >>> df.shape
    (180, 3)
    >>> list(df.columns)
    ['Reaction', 'Days', 'Subject']
    >>> df["Subject"].iloc[0]
    '308'
    >>> df["Subject"].nunique()
    18
    """
    return _load("sleepstudy.csv", ["Subject"])


def load_dyestuff():
    """Load the Dyestuff data: yield of dyestuff by batch of intermediate product.

    Yield of dyestuff (Naphthalene Black 12B) from 5 preparations from each of
    6 batches of an intermediate product (H-acid). The classic balanced one-way
    random-effects example: how much of the variation in yield is due to the
    batch?

    Returns
    -------
    data : pandas.DataFrame of shape (30, 2)
        Columns:

        - ``Batch`` (str): batch of intermediate product, 6 levels ``"A"`` to
          ``"F"``, 5 rows each.
        - ``Yield`` (int): yield of dyestuff, in grams of standard colour.

    Notes
    -----
    Canonical lme4 model (random intercept per batch)::

        Yield ~ 1 + (1 | Batch)

    Provenance: R package lme4 (1.1-31), data set ``Dyestuff``. Original
    source: Davies, O. L. (ed.) (1947), *Statistical Methods in Research and
    Production*, Oliver and Boyd (section 6.4 of the 4th edition, Davies and
    Goldsmith, 1972), as analysed in Box, G. E. P. and Tiao, G. C. (1973),
    *Bayesian Inference in Statistical Analysis*, Addison-Wesley, section 5.1.2.

    Examples
    --------
    >>> from sklearn_mixed.datasets import load_dyestuff
    >>> df = load_dyestuff()
    >>> df.shape
    (30, 2)
    >>> sorted(df["Batch"].unique())
    ['A', 'B', 'C', 'D', 'E', 'F']
    >>> print(f"{df['Yield'].mean():.1f}")
    1527.5
    """
    return _load("dyestuff.csv", ["Batch"])


def load_dyestuff2():
    """Load the Dyestuff2 data: simulated data with no between-batch variation.

    Simulated data with the same layout as :func:`load_dyestuff` (6 batches of
    5 observations), constructed so that the between-batch variance is
    estimated as zero: the lme4 fit is singular. A standard test case for
    boundary estimates.

    Returns
    -------
    data : pandas.DataFrame of shape (30, 2)
        Columns:

        - ``Batch`` (str): batch, 6 levels ``"A"`` to ``"F"``, 5 rows each.
        - ``Yield`` (float): simulated response (dimensionless).

    Notes
    -----
    Canonical lme4 model (a singular fit: the batch variance is 0)::

        Yield ~ 1 + (1 | Batch)

    Provenance: R package lme4 (1.1-31), data set ``Dyestuff2``. Original
    source: Box, G. E. P. and Tiao, G. C. (1973), *Bayesian Inference in
    Statistical Analysis*, Addison-Wesley, Table 5.1.4 (constructed data).

    Examples
    --------
    >>> from sklearn_mixed.datasets import load_dyestuff2
    >>> df = load_dyestuff2()
    >>> df.shape
    (30, 2)
    >>> df.groupby("Batch").size().tolist()
    [5, 5, 5, 5, 5, 5]
    """
    return _load("dyestuff2.csv", ["Batch"])


def load_penicillin():
    """Load the Penicillin data: potency of penicillin samples on assay plates.

    Six samples of penicillin were tested with the *B. subtilis* plate method
    on each of 24 plates. The response is the diameter of the zone of
    inhibition of growth of the organism. Every sample is used on every plate:
    ``plate`` and ``sample`` are fully crossed grouping factors.

    Returns
    -------
    data : pandas.DataFrame of shape (144, 3)
        Columns:

        - ``diameter`` (int): diameter of the zone of inhibition of growth, in
          millimetres.
        - ``plate`` (str): assay plate, 24 levels ``"a"`` to ``"x"``.
        - ``sample`` (str): penicillin sample, 6 levels ``"A"`` to ``"F"``.

    Notes
    -----
    Canonical lme4 model (crossed random intercepts)::

        diameter ~ 1 + (1 | plate) + (1 | sample)

    Provenance: R package lme4 (1.1-31), data set ``Penicillin``. Original
    source: Davies, O. L. and Goldsmith, P. L. (eds) (1972), *Statistical
    Methods in Research and Production*, 4th edition, Oliver and Boyd,
    Table 6.6.

    Examples
    --------
    >>> from sklearn_mixed.datasets import load_penicillin
    >>> df = load_penicillin()
    >>> df.shape
    (144, 3)
    >>> df["plate"].nunique(), df["sample"].nunique()
    (24, 6)
    """
    return _load("penicillin.csv", ["plate", "sample"])


def load_pastes():
    """Load the Pastes data: strength of a chemical paste, casks nested in batches.

    Strength of a chemical paste product, whose quality depends on the delivery
    batch and on the cask within the delivery. Three casks were chosen at random
    from each of 10 delivery batches, and two analytical tests were made on the
    sample of each cask. Casks are nested in batches: cask ``"a"`` of batch
    ``"A"`` has nothing to do with cask ``"a"`` of batch ``"B"``, so the
    grouping factor for casks is the nested label ``sample``.

    Returns
    -------
    data : pandas.DataFrame of shape (60, 4)
        Columns:

        - ``strength`` (float): paste strength.
        - ``batch`` (str): delivery batch, 10 levels ``"A"`` to ``"J"``.
        - ``cask`` (str): cask within the batch, ``"a"``, ``"b"`` or ``"c"``.
        - ``sample`` (str): the nested label ``"<batch>:<cask>"`` (e.g.
          ``"A:a"``), 30 levels with 2 rows each.

    Notes
    -----
    Canonical lme4 model (nested random intercepts)::

        strength ~ 1 + (1 | batch) + (1 | batch:cask)

    equivalently ``strength ~ 1 + (1 | batch/cask)`` or
    ``strength ~ 1 + (1 | batch) + (1 | sample)``.

    Provenance: R package lme4 (1.1-31), data set ``Pastes``. Original source:
    Davies, O. L. and Goldsmith, P. L. (eds) (1972), *Statistical Methods in
    Research and Production*, 4th edition, Oliver and Boyd, Table 6.5.

    Examples
    --------
    >>> from sklearn_mixed.datasets import load_pastes
    >>> df = load_pastes()
    >>> df.shape
    (60, 4)
    >>> df.loc[0, "sample"]
    'A:a'
    >>> df["sample"].nunique()
    30
    """
    return _load("pastes.csv", ["batch", "cask", "sample"])


def load_hsb82():
    """Load the Hsb82 data: mathematics achievement in US high schools.

    High School and Beyond, 1982: mathematics achievement and socio-economic
    status of 7185 students in 160 US high schools (14 to 67 students per
    school; 90 public and 70 Catholic schools). The classic two-level data set
    of Raudenbush and Bryk.

    Returns
    -------
    data : pandas.DataFrame of shape (7185, 8)
        Columns:

        - ``school`` (str): school identifier, 160 levels (e.g. ``"1224"``).
        - ``minrty`` (str): member of a minority racial group, ``"No"`` or
          ``"Yes"``.
        - ``sx`` (str): sex, ``"Male"`` or ``"Female"``.
        - ``ses`` (float): socio-economic status score (a composite of parental
          education, occupation and income).
        - ``mAch`` (float): mathematics achievement score.
        - ``meanses`` (float): mean of ``ses`` within the school.
        - ``sector`` (str): ``"Public"`` or ``"Catholic"`` (a school-level
          variable).
        - ``cses`` (float): ``ses`` centred at the school mean,
          ``ses - meanses``.

    Notes
    -----
    Canonical lme4 models: random intercept and ``ses`` slope per school::

        mAch ~ ses + (ses | school)

    and Raudenbush and Bryk's intercepts-and-slopes-as-outcomes model::

        mAch ~ meanses * cses + sector * cses + (cses | school)

    Provenance: R package mlmRev (1.0-8), data set ``Hsb82``. Original source:
    the High School and Beyond survey (1982) subsample analysed in
    Raudenbush, S. W. and Bryk, A. S. (2002), *Hierarchical Linear Models:
    Applications and Data Analysis Methods*, 2nd edition, Sage.

    Examples
    --------
    >>> from sklearn_mixed.datasets import load_hsb82
    >>> df = load_hsb82()
    >>> df.shape
    (7185, 8)
    >>> df["school"].nunique()
    160
    >>> sorted(df["sector"].unique())
    ['Catholic', 'Public']
    """
    return _load("hsb82.csv", ["school", "minrty", "sx", "sector"])


def load_insteval():
    """Load the InstEval data: lecture ratings by students at ETH Zurich.

    University lecture evaluations: 73421 ratings (1 to 5) by 2972 students
    of 1128 instructors in 14 departments.  Students and instructors are
    crossed (each student rates several instructors, each instructor is
    rated by many students): the classic test of crossed random effects,
    and a high-cardinality categorical data set for encoders.

    Returns
    -------
    data : pandas.DataFrame of shape (73421, 7)
        Columns:

        - ``s`` (str): student, 2972 levels.
        - ``d`` (str): instructor (lecturer), 1128 levels.
        - ``studage`` (int): the student's semester band, 2, 4, 6 or 8.
        - ``lectage`` (int): how many semesters back the lecture was, 1 to 6.
        - ``service`` (int): 1 if the lecture is held for another department.
        - ``dept`` (str): the lecture's department, 14 levels.
        - ``y`` (int): the rating, 1 (poor) to 5 (very good).

    Notes
    -----
    lme4's speed test: ``y ~ service + (1 | s) + (1 | d) + (1 | dept)``.

    Provenance: R package lme4 1.1-31, data set ``InstEval`` (factors written
    as strings, ``studage`` and ``lectage`` as their integer labels), shipped
    gzipped; original source ETH Zurich's lecture evaluations, courtesy of
    Martin Maechler.

    Examples
    --------
    >>> from sklearn_mixed.datasets import load_insteval
    >>> df = load_insteval()
    >>> df.shape
    (73421, 7)
    >>> df["s"].nunique(), df["d"].nunique(), df["dept"].nunique()
    (2972, 1128, 14)
    """
    return _load("insteval.csv.gz", ["s", "d", "dept"])


def load_contraception():
    """Load the Contraception data: contraceptive use of women in Bangladesh's districts.

    A subsample of the 1988 Bangladesh Fertility Survey: 1934 women in 60
    districts (1 to 118 women each), whether they used contraception at the
    time of the survey.  The canonical binary-outcome multilevel data set.

    Returns
    -------
    data : pandas.DataFrame of shape (1934, 5)
        Columns:

        - ``use`` (str): ``"Y"`` or ``"N"``, contraceptive use.
        - ``age`` (float): age in years, centred at the mean.
        - ``urban`` (str): ``"Y"`` urban, ``"N"`` rural residence.
        - ``livch`` (str): number of living children, ``"0"``, ``"1"``,
          ``"2"``, ``"3+"``.
        - ``district`` (str): district identifier, 60 levels.

    Notes
    -----
    Canonical lme4 models (binomial GLMMs)::

        glmer(use ~ age + I(age^2) + urban + livch + (1 | district), family = binomial)
        glmer(use ~ age + I(age^2) + urban + livch + (urban | district), family = binomial)

    Provenance: R package mlmRev (1.0-8), data set ``Contraception`` (the
    ``woman`` identifier dropped); from Huq, N. M. and Cleland, J. (1990),
    *Bangladesh Fertility Survey 1989 (Main Report)*, National Institute of
    Population Research and Training, Dhaka; analysed by Steele, Diamond and
    Amin (1996) and in the mlmRev vignettes.

    Examples
    --------
    >>> from sklearn_mixed.datasets import load_contraception
    >>> df = load_contraception()
    >>> df.shape
    (1934, 5)
    >>> df["district"].nunique()
    60
    """
    return _load("contraception.csv", ["use", "urban", "livch", "district"])


def load_dietox():
    """Load the dietox data: growth curves of pigs in a 3 x 3 factorial experiment.

    Weight of 72 slaughter pigs measured weekly for 12 weeks (three pigs have
    11 measurements), with their cumulated feed intake. The pigs received one
    of 3 doses of vitamin E (0, 100, 200 mg dl-alpha-tocopheryl acetate per kg
    feed) combined with one of 3 doses of copper (0, 35, 175 mg per kg feed);
    the pigs are littermates (21 litters).

    Returns
    -------
    data : pandas.DataFrame of shape (861, 9)
        Columns:

        - ``Weight`` (float): weight, in kg.
        - ``Feed`` (float): cumulated feed intake, in kg; missing (NaN) in
          week 1 (72 rows).
        - ``Time`` (int): week in the experiment, 1 to 12.
        - ``Pig`` (str): pig identifier, 72 levels (``"4601"``, ...,
          ``"8442"``), 11 or 12 rows each.
        - ``Evit`` (int): vitamin E dose, coded 1, 2, 3 (R's levels
          ``"Evit000"``, ``"Evit100"``, ``"Evit200"``).
        - ``Cu`` (int): copper dose, coded 1, 2, 3 (R's levels ``"Cu000"``,
          ``"Cu035"``, ``"Cu175"``).
        - ``Litter`` (str): litter identifier, 21 levels (``"1"``, ...,
          ``"24"``); every pig belongs to one litter.
        - ``Start`` (float): start weight in the experiment (the weight in
          week 1), in kg.
        - ``CuF`` (str): copper dose as R's factor labels, ``"Cu000"``,
          ``"Cu035"`` or ``"Cu175"`` (the same information as ``Cu``).

    Notes
    -----
    Canonical lme4 model (quadratic growth curve, random intercept and slope
    per pig)::

        Weight ~ Time + I(Time^2) + (Time | Pig)

    Provenance: R package geepack (1.3.9), data set ``dietox``, exported by
    ``tools/make_formula_references.R`` (``Evit`` and ``Cu`` as the integer
    codes of R's factors, ``CuF`` added). Original source: Lauridsen, C.,
    Højsgaard, S. and Sørensen, M. T. (1999), Influence of dietary rapeseed
    oil, vitamin E, and copper on performance and antioxidant and oxidative
    status of pigs, *Journal of Animal Science* 77, 906-916.

    Examples
    --------
    >>> from sklearn_mixed.datasets import load_dietox
    >>> df = load_dietox()
    >>> df.shape
    (861, 9)
    >>> list(df.columns)
    ['Weight', 'Feed', 'Time', 'Pig', 'Evit', 'Cu', 'Litter', 'Start', 'CuF']
    >>> df["Pig"].nunique(), df["Litter"].nunique()
    (72, 21)
    >>> int(df["Feed"].isna().sum())
    72
    """
    return _load("dietox.csv", ["Pig", "Litter", "CuF"])
