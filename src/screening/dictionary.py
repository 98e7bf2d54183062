"""The data dictionary: one description per analyst-facing table and column.

The same text becomes `COMMENT ON` in the database (so DBeaver and `duckdb_columns()`
show it) and docs/data-dictionary.md (rendered by `render_markdown`; a test keeps the
page equal to it). Source columns are described from the contract's aliases.
"""

from __future__ import annotations

import duckdb

from .contract import SourceSpec

TYPE_WORDS = {
    "text": "text",
    "id": "18-character resident ID number (GB 11643, normalised)",
    "date": "date",
    "money": "yuan, 2 decimals",
    "enum": "one of",
    "grade": "disability grade 1–4 (1 most severe)",
}

PROVENANCE = {
    "period": "delivery period YYYY-MM (the month folder the file came in)",
    "file": "file name the row came from",
    "row_number": "row in that file as a spreadsheet shows it",
    "extra": "columns the contract does not know, as delivered (JSON object), or null",
}

# A decision as imported: `verifications` and its view `current_verifications`.
VERIFICATION_COLUMNS = {
    "period": "期次 the listed month YYYY-MM the decision is about",
    "township": "乡镇 of the household on that period's list",
    "household_id": "户编号 as on the list (suspects.household_id)",
    "result": "核实结果 确认纳入 / 不予纳入 / 待核实",
    "verification_date": "核实日期: in the period's month or the two months after it, and "
    "not before the list was published (unless it was published after that window); may "
    "be empty for 待核实",
    "note": "备注 as written by the township (trimmed), or null",
    "file": "name of the feedback file the decision came from",
    "file_sha256": "SHA-256 of that file's bytes",
    "row_number": "row in that file as a spreadsheet shows it",
    "imported_at": "when the decision was imported (local time)",
    "imported_by": "OS user who ran `screening feedback import`",
}

TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "suspects": (
        "疑似监测对象: one row per listed household per period (every period kept; the "
        "latest run of a period replaces its rows)",
        {
            "period": "期次 screened month YYYY-MM",
            "township": "乡镇",
            "village": "村 (行政村)",
            "household_id": "户编号 from the roster",
            "head_name": "户主姓名",
            "head_id_number": "户主身份证号",
            "household_type": "户类型: 脱贫户 / 监测户 / 一般农户",
            "household_size": "家庭人口: members on the roster snapshot in force",
            "per_capita_income": "家庭年人均纯收入 (previous year, from the roster)",
            "monitoring_line": "监测标准 in force at the end of the period",
            "colour": "预警等级 红 (2+ risks) / 黄 (only income below the line) / "
            "蓝 (one other risk)",
            "risk_codes": "风险代码 list: MEDICAL, EDUCATION, DROPOUT, ACCIDENT, DISABILITY, "
            "ASSISTANCE, LOW_INCOME, SPENDING",
            "risk_labels": "风险点 Chinese labels joined with ';'",
            "medical_oop": "医疗自付合计: hospital out-of-pocket in the 12-month window",
            "education_cost": "教育支出合计: net education cost in the window",
            "accident_loss": "意外损失合计: accident loss after compensation in the window",
            "rigid_expenditure": "刚性支出合计 = medical_oop + education_cost + accident_loss",
            "labour_capacity": "劳动力状况 有劳动力 / 弱劳动力 / 无劳动力",
            "listing_status": "纳入状态 新增 / 持续 / 已在监测 / 已确认待录入",
            "run_id": "批次号: the run that produced the row (see runs)",
            "last_decision": "上次核实结果: the township's latest decision on an earlier list "
            "(确认纳入 / 不予纳入 / 待核实), or null; a 不予纳入 household listed again as 新增 "
            "had a department record dated after it",
            "last_decision_date": "上次核实日期 of that decision",
        },
    ),
    "evidence": (
        "风险依据: one row per (listed household, risk, source record) per period",
        {
            "period": "期次 screened month",
            "household_id": "户编号",
            "id_number": "the member's ID number",
            "name": "the member's name",
            "risk_code": "the risk this record supports",
            "source": "source key: roster, medical, education, traffic, civil, disability",
            "source_key": "the record's natural key ('|' between parts) to find the original",
            "rule_date": "the date the rule used (settlement, record, accident, event, issue date)",
            "amount": "the amount the rule counted (yuan), or the value compared",
            "detail": "说明 in Chinese",
        },
    ),
    "quarantine": (
        "隔离区: every rejected input row, one row per failed check (a row can fail several)",
        {
            "period": "delivery period",
            "source": "source key",
            "file": "file name",
            "row_number": "row in the file as a spreadsheet shows it",
            "column": "column key that failed (natural key columns joined with '+')",
            "check": "check that failed: invalid_id, invalid_date, invalid_money, "
            "invalid_value, required, min, implausible (an amount or per-capita income above "
            "the ingest_limits parameters), duplicate_key (differing copies of a natural "
            "key), a cross-field check name, or for damaged text invalid_encoding, "
            "invalid_character (NUL), too_long (over 32767); too_many_fields for a CSV row "
            "with more fields than the header; formula_not_calculated for an xlsx formula "
            "cell with no saved value",
            "raw_value": "the value as delivered",
        },
    ),
    "ingest_log": (
        "入库记录: per (period, source), the delivery stored (status loaded or empty), or why "
        "none is (missing, rejected, held, withdrawn). A run never replaces a stored "
        "delivery's row with a missing or rejected file's: that attempt is in "
        "delivery_events (kept)",
        {
            "period": "delivery period",
            "source": "source key",
            "file": "file name",
            "sha256": "SHA-256 of the file's bytes",
            "rows_read": "data rows read (blank rows and title rows above the header not "
            "counted) = rows_accepted + rows_rejected + rows_duplicate",
            "rows_accepted": "rows stored in stg_<source> (held: rows in held_rows)",
            "rows_rejected": "rows sent to quarantine",
            "rows_duplicate": "rows identical in every contract column to an earlier row of "
            "the file: the same record sent twice, counted once (null before this column "
            "existed)",
            "status": "loaded / empty (header only) / missing / rejected (whole file) / held "
            "(a completeness gate held the period's first file: see held_deliveries) / "
            "withdrawn (`screening ingest --withdraw`: who and when in message)",
            "message": "one-line reason, or notes on what reading the file did (encoding, "
            "delimiter, line ends, sheet, title rows, merged cells, formulas, duplicates, "
            "extra columns, blank rows)",
            "encoding": "CSV text encoding detected: utf-8, utf-8-sig or gb18030",
            "ingested_at": "when the file was read, or the delivery withdrawn (local time)",
            "read_key": "SHA-256 of what reading the file depends on: its bytes, its "
            "source's contract with the aliases in force, the program's version; an "
            "unchanged file is read again when this would differ",
            "warning": "warnings about the file, or null: its name names another period, its "
            "bytes equal another period's delivery, a completeness gate's warning level",
        },
    ),
    "delivery_events": (
        "报送事件: what runs and officers did with a delivery beyond reading it, one row per "
        "event: kept (this period's file missing or rejected, the stored delivery stayed in "
        "force), held, accepted (a held file used with --accept-held), withdrawn",
        {
            "period": "delivery period",
            "source": "source key",
            "event": "kept / held / accepted / withdrawn",
            "file": "this period's file concerned (null: no file in the inbox)",
            "stored_file": "the stored delivery's file: used instead (kept, held) or removed "
            "(withdrawn); null when none was stored",
            "stored_ingested_at": "when that stored delivery was read",
            "message": "the reason, in Chinese and English",
            "recorded_at": "when (local time)",
            "recorded_by": "OS user who ran the run or command",
            "run_id": "批次号 of the run (null for `screening ingest`)",
        },
    ),
    "held_deliveries": (
        "暂扣的报送: one row per (delivery file, completeness gate it failed); the file is not "
        "used (the delivery stored before stays in force, or the source counts as not "
        "delivered) until accepted with --accept-held",
        {
            "period": "delivery period",
            "source": "source key",
            "file": "file name",
            "sha256": "SHA-256 of the file's bytes",
            "gate": "quarantined_share / snapshot_ratio (persons ÷ the snapshot in force "
            "before) / match_rate (records whose ID is on the roster in force ÷ records)",
            "measured": "the value measured, a share (0.667 = 66.7 %)",
            "threshold": "the hold level it failed: gates.max_quarantined_share (or 2/3, held "
            "whatever the parameters and the size), gates.min_snapshot_ratio, "
            "gates.min_match_rate (share and match rate only for gates.min_rows rows or more)",
            "rows_read": "data rows of the file",
            "rows_accepted": "rows that passed validation",
            "rows_rejected": "rows quarantined",
            "held_at": "when it was last held (local time)",
            "run_id": "批次号 of that run (null for `screening ingest`)",
            "accepted_by": "OS user who accepted it (--accept-held), null until accepted",
            "accepted_at": "when it was accepted",
        },
    ),
    "held_rows": (
        "暂扣的行: every row of a held file, so that nothing is lost: the rows that passed "
        "validation as JSON records, the quarantined cells as in quarantine; removed when "
        "the file is accepted (its rows are then in stg_<source> and quarantine)",
        {
            "period": "delivery period",
            "source": "source key",
            "file": "file name",
            "sha256": "SHA-256 of the file's bytes (held_deliveries.sha256)",
            "row_number": "row in the file (header is row 1)",
            "column": "for a quarantined cell: the column that failed",
            "check": "for a quarantined cell: the check that failed (as in quarantine)",
            "raw_value": "for a quarantined cell: the value as delivered",
            "record": "for a row that passed: the typed record (JSON), null for a cell",
        },
    ),
    "duplicate_copies": (
        "重复记录: the copies of a natural key that were quarantined (check duplicate_key), "
        "with whose record each was, for the run report's data-quality section",
        {
            "period": "delivery period",
            "source": "source key",
            "file": "file name",
            "row_number": "row in the file (header is row 1)",
            "source_key": "the natural key ('|' between parts)",
            "id_number": "the ID number on that row (normalised), or null when invalid",
            "household_id": "roster only: 户编号 on that row",
        },
    ),
    "runs": (
        "批次: one row per screening run, failed runs included",
        {
            "run_id": "批次号",
            "period": "screened month",
            "township": "乡镇 for a one-township re-run, null for a full run",
            "started_at": "start (local time)",
            "finished_at": "end (local time)",
            "status": "running / success / failed / held (a completeness gate held a "
            "delivery: nothing published, see held_deliveries)",
            "parameters": "JSON: every parameter value used, with its effective date",
            "code_version": "package version (+ git commit)",
            "input_files": "JSON: source, file, sha256 and status of each input (kept: the "
            "stored delivery kept_file was used instead)",
            "message": "why a failed or held run stopped",
            "demo": "true when the run screened the bundled synthetic sample (--demo): "
            "its lists are of people who do not exist",
        },
    ),
    "secrets": (
        "密钥: values private to this database (the key the lists' 核对码 are made with); "
        "never share them",
        {
            "name": "what the value is for (list_key)",
            "value": "the secret value",
        },
    ),
    "match_rates": (
        "匹配率: per (period, source), department records in the window matched to the roster",
        {
            "period": "screened month",
            "source": "source key",
            "records_in_window": "records whose rule date lies in the 12-month window",
            "matched": "of those, records whose ID number is on the roster in force",
            "unmatched": "records of people not on the roster (kept, counted, not screened)",
        },
    ),
    "screened_households": (
        "已筛查户: one row per household on the roster per screened period, listed or not "
        "(the basis of household_history and of the risk-removal check; a township re-run "
        "replaces that township's rows)",
        {
            "period": "期次 screened month",
            "township": "乡镇",
            "village": "村",
            "household_id": "户编号",
            "household_type": "户类型",
            "monitoring_status": "监测状态 on the roster in force",
            "per_capita_income": "家庭年人均纯收入",
            "monitoring_line": "监测标准 in force",
            "labour_capacity": "劳动力状况",
            "colour": "预警等级, null without a risk",
            "risk_codes": "风险代码 list, empty without a risk",
            "risk_labels": "风险点, null without a risk",
            "listed": "on the period's list (false for a risk hidden by a 不予纳入 decision)",
            "listing_status": "纳入状态 when listed",
            "last_decision": "the latest township decision on an earlier list, or null",
            "last_decision_date": "its 核实日期",
            "run_id": "批次号",
        },
    ),
    "household_history": (
        "户历史: each household's timeline, one row per screened period: colour, risks, "
        "listing status and the township's current decision on that period's list "
        "(`screening explain` shows it)",
        {
            "period": "期次",
            "township": "乡镇",
            "village": "村",
            "household_id": "户编号",
            "monitoring_status": "监测状态",
            "colour": "预警等级 or null",
            "risk_codes": "风险代码 list",
            "risk_labels": "风险点",
            "listed": "on that period's list",
            "listing_status": "纳入状态",
            "verification_result": "核实结果 on that period's list, or null (no answer)",
            "verification_date": "核实日期",
            "verification_note": "备注",
            "run_id": "批次号",
        },
    ),
    "removal_candidates": (
        "风险消除候选: per period, monitored households (监测中) without any risk in the last "
        "risk_removal_clear_periods screened periods, income at or above the line and with "
        "labour; a township re-run replaces that township's rows",
        {
            "period": "期次",
            "township": "乡镇",
            "village": "村",
            "household_id": "户编号",
            "head_name": "户主姓名",
            "head_id_number": "户主身份证号",
            "household_type": "户类型",
            "household_size": "家庭人口",
            "per_capita_income": "家庭年人均纯收入 (at or above the line)",
            "monitoring_line": "监测标准",
            "labour_capacity": "劳动力状况 (有劳动力 or 弱劳动力)",
            "periods_checked": "the screened periods found clear, joined with '、'",
            "last_risk_period": "the latest earlier period with a risk, or null (none seen)",
            "last_risk_labels": "风险点 of that period",
            "run_id": "批次号",
        },
    ),
    "scale_checks": (
        "规模校验: per period, listed households per township (township null = the county) as "
        "a share of roster households and of 脱贫户 + 监测户",
        {
            "period": "期次",
            "township": "乡镇, null for the whole county",
            "roster_households": "households on the roster in force",
            "base_households": "of those, 脱贫户 + 监测户",
            "listed": "households on the period's list",
            "share_of_roster": "listed / roster_households",
            "share_of_base": "listed / base_households (checked against scale_check)",
        },
    ),
    "verifications": (
        "核实结果: one row per imported township decision, every import kept as history; a "
        "row already imported from the same file, or the same as the current decision, is "
        "not stored again",
        {
            **VERIFICATION_COLUMNS,
            "is_current": "true for the household's latest imported decision of the period",
        },
    ),
    "current_verifications": (
        "当前核实结果: the current decision per (period, household_id): verifications where "
        "is_current",
        VERIFICATION_COLUMNS,
    ),
    "verification_rejects": (
        "核实反馈拒收: rejected rows of each feedback file's latest import, one row per "
        "failed check (a row can fail several)",
        {
            "period": "期次 the import was for",
            "township": "乡镇 of the file (from --township, its 乡镇 column or its name)",
            "file": "feedback file name",
            "file_sha256": "SHA-256 of the file's bytes",
            "row_number": "row in the file as a spreadsheet shows it",
            "household_id": "户编号 as written (trimmed), or null",
            "column": "column that failed: household_id, verification_result, "
            "verification_date, or the header of a damaged cell",
            "check": "missing_household, unknown_household (not on the period's list), "
            "other_township, duplicate_household (several rows in the file), missing_result, "
            "invalid_result, missing_date, invalid_date, date_out_of_range (outside the "
            "period's month and the next two), before_publication (dated before the list "
            "was published), or for damaged cells invalid_encoding, invalid_character, "
            "too_long",
            "raw_value": "the value as written (trimmed)",
            "message": "the reason in Chinese and English",
            "imported_at": "when this reject was first recorded (local time)",
            "imported_by": "OS user who ran that import",
        },
    ),
}


def source_columns(spec: SourceSpec) -> dict[str, str]:
    cols = {}
    for key, col in spec.columns.items():
        words = TYPE_WORDS[col.type]
        if col.type == "enum":
            words = f"{words} {' / '.join(col.values)}"
        names = " / ".join(col.aliases)
        cols[key] = f"{names}: {words}" if names else words
    return cols


def source_description(spec: SourceSpec, staging: bool) -> str:
    if staging:
        return (
            f"{spec.title}: every accepted row of every delivery "
            "(a file read again for a period replaces its rows; a missing or rejected file "
            "never does, only `screening ingest --withdraw`)"
        )
    if spec.kind == "snapshot":
        return f"{spec.title}: every roster snapshot received; filter on period"
    key = " + ".join(spec.natural_key)
    return f"{spec.title}: current records, the newest delivery of each {key}"


def entries(specs: dict[str, SourceSpec]) -> dict[str, tuple[str, dict[str, str]]]:
    """Every documented relation: outputs first, then per source its view and staging table."""
    found = dict(TABLES)
    for spec in specs.values():
        cols = {
            "period": PROVENANCE["period"],
            "file": PROVENANCE["file"],
            "row_number": PROVENANCE["row_number"],
            **source_columns(spec),
            "extra": PROVENANCE["extra"],
        }
        found[spec.source] = (source_description(spec, staging=False), cols)
        found[f"stg_{spec.source}"] = (source_description(spec, staging=True), cols)
    return found


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def apply_comments(con: duckdb.DuckDBPyConnection, specs: dict[str, SourceSpec]) -> None:
    """COMMENT ON every documented table or view and each of its columns."""
    kinds = dict(con.execute("SELECT table_name, 'TABLE' FROM duckdb_tables()").fetchall())
    kinds.update(con.execute("SELECT view_name, 'VIEW' FROM duckdb_views()").fetchall())
    for name, (description, columns) in entries(specs).items():
        kind = kinds.get(name)
        if kind is None:
            continue
        con.execute(f"COMMENT ON {kind} {name} IS {_quote(description)}")
        for col, text in columns.items():
            con.execute(f'COMMENT ON COLUMN {name}."{col}" IS {_quote(text)}')


def render_markdown(specs: dict[str, SourceSpec]) -> str:
    lines = [
        "# Data dictionary",
        "",
        "The DuckDB file (`screening.duckdb` by default) for analysts. Generated from",
        "`src/screening/dictionary.py` (`make docs`); the same text is in the database as",
        "`COMMENT ON` (see `SELECT * FROM duckdb_columns()`). Names and columns are stable",
        "across releases.",
        "",
    ]
    for name, (description, columns) in entries(specs).items():
        lines += [f"## `{name}`", "", description, "", "| column | meaning |", "|---|---|"]
        lines += [f"| `{col}` | {text} |" for col, text in columns.items()]
        lines.append("")
    return "\n".join(lines)
