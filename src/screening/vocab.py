"""The words the data and the lists use, written once: colours, statuses, decisions,
household types, labour classes, and the money type.

Everything here is a value that appears in the data (the roster's enums, the lists'
columns, the townships' answers) or the one type amounts are kept in; labels of sources
and risk points live with the contract (schemas/) and the rules (rules/).
"""

from __future__ import annotations

import polars as pl

# Amounts: yuan with fen, as delivered and as published.
MONEY = pl.Decimal(18, 2)
MONEY_SQL = "DECIMAL(18,2)"
# Sums and differences of money: any number of Decimal(18, 2) values adds up within it, so
# no delivered value (however absurd) can make a run fail on an overflow.
SUM = pl.Decimal(38, 2)
SUM_SQL = "DECIMAL(38,2)"

# Column types (of the input contract, schemas/<source>.yaml, and of the output tables,
# schemas/tables/) → the polars dtype and the DuckDB type they are kept as.
TYPES: dict[str, tuple[pl.DataType, str]] = {
    "text": (pl.String(), "VARCHAR"),
    "id": (pl.String(), "VARCHAR"),  # 18-character resident ID, normalised
    "enum": (pl.String(), "VARCHAR"),
    "date": (pl.Date(), "DATE"),
    "money": (MONEY, MONEY_SQL),
    "sum": (SUM, SUM_SQL),
    "grade": (pl.Int8(), "TINYINT"),
    "int": (pl.Int64(), "BIGINT"),
    "timestamp": (pl.Datetime("us"), "TIMESTAMP"),
    "bool": (pl.Boolean(), "BOOLEAN"),
    "float": (pl.Float64(), "DOUBLE"),
    "json": (pl.String(), "JSON"),
    "text_list": (pl.List(pl.String()), "VARCHAR[]"),
}

# 三色 classification, in the lists' order.
RED, YELLOW, BLUE = "红", "黄", "蓝"
COLOURS = (RED, YELLOW, BLUE)

# The roster's words.
HEAD_RELATION = "户主"
MONITORED = "监测中"  # monitoring_status of a household already monitored
POVERTY_EXITED, MONITORED_TYPE, ORDINARY = "脱贫户", "监测户", "一般农户"
HOUSEHOLD_TYPES = (POVERTY_EXITED, MONITORED_TYPE, ORDINARY)
# A household whose type the roster leaves empty is screened as an ordinary one (the
# highest medical threshold), so a missing attribute never lists anyone.
DEFAULT_HOUSEHOLD_TYPE = ORDINARY

# Listing status (纳入状态), in the order the lists explain them.
STATUS_NEW, STATUS_CONTINUING = "新增", "持续"
STATUS_MONITORED, STATUS_CONFIRMED = "已在监测", "已确认待录入"
STATUSES = (STATUS_NEW, STATUS_CONTINUING, STATUS_MONITORED, STATUS_CONFIRMED)
# The statuses a township is asked to answer for (whatever the colour): the others were
# decided before. Those without an answer in time count as overdue.
AWAITING_ANSWER = (STATUS_NEW, STATUS_CONTINUING)

# The townships' answers (核实结果).
CONFIRMED, DECLINED, PENDING = "确认纳入", "不予纳入", "待核实"
DECISIONS = (CONFIRMED, DECLINED, PENDING)
# The townships' answers on a 风险消除候选 list (消除意见).
AGREE_REMOVAL, DEFER_REMOVAL = "同意消除", "暂不消除"
REMOVAL_DECISIONS = (AGREE_REMOVAL, DEFER_REMOVAL)

# Labour capacity (劳动力状况).
NO_LABOUR, WEAK_LABOUR, HAS_LABOUR = "无劳动力", "弱劳动力", "有劳动力"
LABOUR_CLASSES = (HAS_LABOUR, WEAK_LABOUR, NO_LABOUR)
