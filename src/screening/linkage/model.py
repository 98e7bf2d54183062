"""The linkage model: Splink (Fellegi–Sunter on DuckDB), trained on the county's own data.

Blocking (which pairs are compared at all, any rule enough): the same birth date digits;
the same name; the same surname, region and sequence digits (a mistyped birth date);
the same pinyin (a homophone); the same surname and township or village, when the record
carries them. Comparisons, each a few levels, first match wins:

    name     exact (term-frequency adjusted: a common name says less), same pinyin,
             pinyin Jaro–Winkler ≥ 0.9, same surname (term-frequency adjusted), else
    id_rest  region and sequence digits: exact, one edit (a changed digit, two swapped)
    birth    birth date digits: exact, one edit, the same but for the century, else
    sex      the sex digit: the same digit, the same parity (sex), else
    place    the record's village / township (when it has them) against the person's

Training is unsupervised, on this run's records and roster: the prior (two random records
match) from the pairs agreeing on name and birth date, the u probabilities by random
sampling of pairs (a fixed seed: the same data give the same model), the m probabilities
by expectation maximisation blocked on the birth date, then on the name. Every m starts
from a value written here, so a county with few records to link still gets a sensible
model; a training pass that cannot run (no pairs to learn from) keeps the start values.
"""

from __future__ import annotations

import copy
import logging
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import polars as pl

from screening.linkage.features import COMPARED
from screening.logs import quieter

log = logging.getLogger(__name__)

SEED = 18  # random sampling of pairs for the u probabilities: reproducible
U_PAIRS = 1e6
# The share of records the deterministic rule (same name and birth date) finds of those
# that have a match: mistyped birth dates and names escape it.
DETERMINISTIC_RECALL = 0.6


@dataclass(frozen=True)
class Level:
    label: str  # the key of the words in features (NAME_WORDS …)
    sql: str
    m: float  # where EM starts
    tf: str | None = None  # term-frequency adjustment on this column


def _exact(column: str) -> str:
    return f'"{column}_l" = "{column}_r"'


# Levels in order, the null level first (weight 0: nothing to compare).
COMPARISONS: dict[str, tuple[str, tuple[Level, ...]]] = {
    "name": (
        "name",
        (
            Level("exact", _exact("name"), 0.85, tf="name"),
            Level("pinyin", _exact("pinyin"), 0.05),
            Level("similar", 'jaro_winkler_similarity("pinyin_l", "pinyin_r") >= 0.9', 0.04),
            Level("surname", _exact("surname"), 0.03, tf="surname"),
            Level("else", "ELSE", 0.03),
        ),
    ),
    "id_rest": (
        "id_rest",
        (
            Level("exact", _exact("id_rest"), 0.7),
            Level("typo", 'damerau_levenshtein("id_rest_l", "id_rest_r") <= 1', 0.28),
            Level("else", "ELSE", 0.02),
        ),
    ),
    "birth": (
        "birth",
        (
            Level("exact", _exact("birth"), 0.6),
            Level("typo", 'damerau_levenshtein("birth_l", "birth_r") <= 1', 0.25),
            Level("century", _exact("birth6"), 0.1),
            Level("else", "ELSE", 0.05),
        ),
    ),
    "sex": (
        "sex",
        (
            Level("digit", _exact("sex_digit"), 0.8),
            Level("same", _exact("sex"), 0.15),
            Level("else", "ELSE", 0.05),
        ),
    ),
    "place": (
        "township",
        (
            Level("village", f"{_exact('township')} AND {_exact('village')}", 0.6),
            Level("township", _exact("township"), 0.3),
            Level("else", "ELSE", 0.1),
        ),
    ),
}
BLOCKING = (
    ("birth",),
    ("name",),
    ("surname", "id_rest", "sex_digit"),
    ("pinyin",),
    ("surname", "township"),
    ("surname", "village"),
)
PAIR_COLUMNS = (
    "record",
    "id_number",
    "match_probability",
    "match_weight",
    *(f"level_{c}" for c in COMPARISONS),
)


def level_labels(comparison: str) -> dict[int, str]:
    """Splink's gamma value → the level's label: -1 is the null level, then the levels
    counted down from the first."""
    levels = COMPARISONS[comparison][1]
    return {-1: "null", **{len(levels) - 1 - i: lv.label for i, lv in enumerate(levels)}}


def settings() -> dict[str, Any]:
    comparisons = []
    for name, (null_column, levels) in COMPARISONS.items():
        null = {
            "sql_condition": f'"{null_column}_l" IS NULL OR "{null_column}_r" IS NULL',
            "label_for_charts": "null",
            "is_null_level": True,
        }
        rows = [
            {
                "sql_condition": lv.sql,
                "label_for_charts": lv.label,
                "m_probability": lv.m,
                **(
                    {"tf_adjustment_column": lv.tf, "disable_tf_exact_match_detection": True}
                    if lv.tf
                    else {}
                ),
            }
            for lv in levels
        ]
        comparisons.append({"output_column_name": name, "comparison_levels": [null, *rows]})
    return {
        "link_type": "link_only",
        "comparisons": comparisons,
        "blocking_rules_to_generate_predictions": [
            " AND ".join(f'l."{c}" = r."{c}"' for c in rule) for rule in BLOCKING
        ],
        "retain_matching_columns": True,
        "retain_intermediate_calculation_columns": True,  # the levels, for the reasons
        "additional_columns_to_retain": [],
    }


def link(records: pl.DataFrame, roster: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """Every pair (record, roster person) the blocking rules find whose match probability
    is at least `threshold`: PAIR_COLUMNS, `level_<comparison>` holding the level's label.
    `records` has `record` (a unique key) and the COMPARED columns, `roster` `id_number`
    and the COMPARED columns."""
    if records.height == 0 or roster.height == 0:
        return pl.DataFrame(schema=dict.fromkeys(PAIR_COLUMNS, pl.String)).with_columns(
            pl.col("match_probability", "match_weight").cast(pl.Float64)
        )
    import duckdb
    from splink import DuckDBAPI, Linker

    left = records.select(pl.col("record").alias("unique_id"), *COMPARED)
    right = roster.select(pl.col("id_number").alias("unique_id"), *COMPARED)
    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})  # fmt: skip
    try:
        con.execute("SET enable_progress_bar = false")
        db = DuckDBAPI(con)
        # Splink explains itself at length (INFO and WARNING): the run's console and log
        # only need ours.
        with quieter("splink", logging.ERROR):
            linker = Linker(
                [
                    db.register(left.to_arrow(), dataset_display_name="records"),
                    db.register(right.to_arrow(), dataset_display_name="roster"),
                ],
                settings(),
                log_level=None,
            )
            _train(linker, records.height, roster.height)
            found = linker.inference.predict(
                threshold_match_probability=threshold, warning_mode="never"
            )
            pairs = pl.from_arrow(found.as_duckdbpyrelation().to_arrow_table())
    finally:
        con.close()
    assert isinstance(pairs, pl.DataFrame)
    return _oriented(pairs)


def _train(linker: Any, records: int, roster_size: int) -> None:
    from splink import block_on
    from splink.internals.constants import LEVEL_NOT_OBSERVED_TEXT
    from splink.internals.exceptions import SplinkException

    # More pairs than the recall allows raises: the settings' start value then stays.
    with suppress(ValueError):
        linker.training.estimate_probability_two_random_records_match(
            [block_on("name", "birth")], recall=DETERMINISTIC_RECALL
        )
    prior = linker._settings_obj._probability_two_random_records_match
    if not 0 < prior < 1:
        # Nothing agreed on both: at most about one record in ten has its person here.
        linker._settings_obj._probability_two_random_records_match = 0.1 / roster_size
    linker.training.estimate_u_using_random_sampling(
        max_pairs=U_PAIRS, seed=SEED, min_count_per_level=None, num_chunks=1
    )
    # A level no sampled pair fell in is rarer than the sample can tell: one in the pairs
    # sampled, not Splink's one in a million (a small county samples every pair it has). A
    # comparison no sampled pair could make (no record says where its person lives) weighs
    # nothing either way.
    sampled = min(U_PAIRS, records * roster_size)
    for comparison in linker._settings_obj.comparisons:
        levels = comparison._comparison_levels_excluding_null
        unseen = [lv for lv in levels if lv._u_probability in (None, LEVEL_NOT_OBSERVED_TEXT)]
        for level in unseen:
            level.u_probability = level.m_probability if len(unseen) == len(levels) else 1 / sampled
    for rule in (block_on("birth"), block_on("name")):
        # A pass that fails (no pairs to learn from; an m estimated at 0, which Splink
        # refuses) leaves Splink's settings without the comparison it blocked on, or half
        # updated; one whose estimates say that disagreeing is evidence of
        # a match, or agreeing evidence against (a few records, mostly of people not on the
        # roster, can pull EM there), is not believed. Either way the settings are put back
        # as they were before the pass.
        before = copy.deepcopy(linker._settings_obj)
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(rule)
        except (SplinkException, ValueError) as exc:
            linker._settings_obj = before
            log.info("linkage: an EM pass was skipped (%s): start values kept", type(exc).__name__)
            continue
        if not _plausible(linker):
            linker._settings_obj = before
            log.info("linkage: an EM pass gave implausible estimates: start values kept")


def _plausible(linker: Any) -> bool:
    """Agreeing on a comparison's first level is no evidence against a match, and falling
    to its last (else) level no evidence for one."""
    for comparison in linker._settings_obj.comparisons:
        levels = comparison._comparison_levels_excluding_null
        first, last = levels[0], levels[-1]
        if first.m_probability < first.u_probability or last.m_probability > last.u_probability:
            return False
    return True


def _oriented(pairs: pl.DataFrame) -> pl.DataFrame:
    """Record on the left, roster person on the right, levels named."""
    swap = pl.col("source_dataset_l") == "roster"

    def side(column: str, record_side: bool) -> pl.Expr:
        a, b = (f"{column}_l", f"{column}_r") if record_side else (f"{column}_r", f"{column}_l")
        return pl.when(swap).then(pl.col(b)).otherwise(pl.col(a)).cast(pl.String)

    levels = [
        pl.col(f"gamma_{c}")
        .replace_strict(level_labels(c), return_dtype=pl.String)
        .alias(f"level_{c}")
        for c in COMPARISONS
    ]
    return pairs.select(
        side("unique_id", True).alias("record"),
        side("unique_id", False).alias("id_number"),
        pl.col("match_probability").cast(pl.Float64),
        pl.col("match_weight").cast(pl.Float64),
        *levels,
    )
