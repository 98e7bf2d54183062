"""Synthetic sample county: a messy monthly inbox and a manifest of what it must yield.

`generate` writes one folder per period with one extract per source, laid out the way
the departments deliver them (data-contract.md): Chinese and English headers and file
names, UTF-8 / BOM / GBK CSV, xlsx with real date cells, typed parquet, and every value
form the contract accepts. Households are of two kinds:

- *background* households, whose department records are kept under every threshold so
  that the only risk they can carry is LOW_INCOME (income is what it is);
- *planted* households, whose records are fully controlled so that their risk set in each
  period is known in advance (boundaries, window edges, corrections, roster changes).

The manifest's expected lists come from a plain re-statement of screening-rules.md over
the generator's own typed records (never from the pipeline), and the generator refuses to
write a sample whose planted cases or background households disagree with their intent.
Everything random comes from `random.Random` streams seeded from (seed, purpose), so the
same arguments give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import random
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import xlsxwriter

from screening import contract, ids

# ------------------------------------------------------------------ default rule parameters
# The oracle states the default rule set on its own, in cents, so the manifest does not
# depend on the pipeline code it is meant to check.

MONITORING_LINE = 600_000
MEDICAL_THRESHOLD = {"脱贫户": 500_000, "监测户": 500_000, "一般农户": 2_000_000}
EDUCATION_THRESHOLD = 800_000
ACCIDENT_THRESHOLD = 1_000_000
COMPULSORY_AGE = (6, 15)
WORKING_AGE = (16, 59)
SEVERE_GRADES = (1, 2)
RISK_CODES = (
    "ACCIDENT",
    "ASSISTANCE",
    "DISABILITY",
    "DROPOUT",
    "EDUCATION",
    "INCOME_DROP",
    "LOW_INCOME",
    "MEDICAL",
    "SPENDING",
)
# Background totals stay this far below each threshold and below household income.
BUDGET_SHARE = 0.9
# INCOME_DROP: per-capita income ≤ 7/10 of the figure 12 months before (a fall of 30 %),
# and below twice the line.
INCOME_DROP_KEPT = (7, 10)
INCOME_DROP_CEILING = 2 * MONITORING_LINE

COUNTY = "430624"
COUNTY_NAME = "湘阴县"
NEIGHBOUR_REGIONS = ("430621", "430626", "430681", "430682", "430903", "430921")
FAR_REGIONS = ("430102", "430602", "440306", "421002", "360121", "430381")
FIXED_CREATED = dt.datetime(2026, 1, 1)
EXCEL_EPOCH = dt.date(1899, 12, 30)
EVENT_SOURCES = ("medical", "education", "traffic", "civil", "disability")


class SampleError(RuntimeError):
    """The generated county contradicts its own plan (a generator bug, never user input)."""


# ------------------------------------------------------------------ names and places

# fmt: off
TOWNSHIP_NAMES = (
    "城关镇", "龙潭镇", "白马乡", "青山乡", "石门镇", "东塘镇", "鹤龙湖镇", "三塘镇",
    "洋沙湖镇", "樟树镇", "岭北镇", "玉华乡", "临资口乡", "静河乡", "六塘乡", "文星镇",
    "袁家铺镇", "新泉镇", "南湖洲镇", "杨林寨乡", "金龙镇", "长乐镇", "清溪乡", "黄泥乡",
    "大荆镇", "梅仙镇", "安定镇", "白沙乡", "桃花乡", "望城镇",
)
# fmt: on
_VILLAGE_FIRST = "新大金石杨桃青龙凤双高和永兴富荷枫柳三白东西南北黄红万长古太"
_VILLAGE_SECOND = "塘坪山湖冲桥田岭港坝湾园丰安星光林河洲峰"
VILLAGE_NAMES = tuple(a + b + "村" for a in _VILLAGE_FIRST for b in _VILLAGE_SECOND)

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶"
    "程苏魏吕丁任沈姚卢傅钟姜崔谭廖范汪陆金石戴贾韦夏邱方侯邹熊孟秦白江薛尹段雷黎史龙陶贺顾"
    "毛郝龚邵万钱严赖洪武莫孔"
)
# Rough national frequencies: the head of the list is far more common than its tail.
SURNAME_WEIGHTS = tuple(max(0.2, 7.5 - 0.35 * i) for i in range(len(SURNAMES)))
_SURNAME_CUM = tuple(itertools.accumulate(SURNAME_WEIGHTS))
_MALE_OLD = "建国华明德福志成春生军平海林金山水根富贵长清正良发强伟忠文武卫东红兵永胜"
_MALE_YOUNG = "子轩浩宇睿泽博文俊杰晨阳一鸣梓豪航思远皓天明辰锦程逸凡"
_FEMALE_OLD = "秀英兰桂芳珍凤玉华梅春花淑琴翠云美丽素娥菊香莲荣"
_FEMALE_YOUNG = "梓涵欣怡雨萱诗琪思彤佳语嫣若曦一诺紫可馨梦瑶雅婷晓雪"

# fmt: off
HOSPITALS = (
    "湘阴县人民医院", "湘阴县中医医院", "湘阴县第二人民医院", "岳阳市第一人民医院",
    "岳阳市中心医院", "湖南省人民医院", "中南大学湘雅医院", "湘阴县妇幼保健院",
)
# fmt: on
SCHOOLS = {
    "高中": ("湘阴县第一中学", "湘阴县第二中学", "湘阴县知源高级中学"),
    "中职": ("湘阴县第一职业中专学校", "岳阳市第一职业中等专业学校"),
    "高职": ("岳阳职业技术学院", "湖南铁道职业技术学院", "长沙民政职业技术学院"),
    "本科": ("湖南农业大学", "湖南师范大学", "湖南理工学院", "湘潭大学", "吉首大学"),
    "研究生": ("中南大学",),
}
_TOWNSHIP_SCHOOLS = {"学前": "中心幼儿园", "小学": "中心小学", "初中": "中学"}
DISABILITY_TYPES = ("视力", "听力", "言语", "肢体", "智力", "精神", "多重")
DISABILITY_TYPE_WEIGHTS = (12, 15, 2, 45, 8, 10, 8)
REMARKS = ("", "", "", "外出务工", "在校生", "长期患病", "已核实", "残疾")
DEPARTMENTS = ("内科", "外科", "骨科", "心内科", "呼吸科", "妇产科", "儿科", "肿瘤科")

# Household shapes: (weight, head-age range, members after the head). Sizes 1-7 with a
# rural mix: many elderly couples and left-behind grandparents with grandchildren.
TEMPLATES: tuple[tuple[float, tuple[int, int], tuple[str, ...]], ...] = (
    (0.08, (58, 88), ()),
    (0.03, (28, 56), ()),
    (0.13, (50, 85), ("spouse",)),
    (0.04, (30, 55), ("parent",)),
    (0.03, (47, 72), ("child",)),
    (0.18, (26, 60), ("spouse", "child")),
    (0.17, (30, 54), ("spouse", "child", "child")),
    (0.07, (34, 54), ("spouse", "child", "child", "parent")),
    (0.06, (50, 70), ("spouse", "child", "dil", "grandchild")),
    (0.07, (52, 72), ("spouse", "child", "dil", "grandchild", "grandchild")),
    (0.04, (54, 70), ("spouse", "child", "dil", "grandchild", "grandchild", "grandchild")),
    (0.02, (48, 60), ("spouse", "child", "dil", "grandchild", "grandchild", "parent")),
)
MALE_RELATIONS = frozenset({"户主", "长子", "次子", "三子", "孙子", "父亲", "儿子", "兄弟"})
IN_LAWS = frozenset({"配偶", "儿媳", "母亲"})

# ------------------------------------------------------------------ calendar


def _month_index(day: dt.date) -> int:
    return day.year * 12 + day.month - 1


def _month_start(month: int) -> dt.date:
    return dt.date(month // 12, month % 12 + 1, 1)


def _month_end(month: int) -> dt.date:
    return _month_start(month + 1) - dt.timedelta(days=1)


_PERIOD = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class Calendar:
    """The screened periods (consecutive months) and the dates the rules derive from them."""

    periods: tuple[str, ...]
    months: tuple[int, ...]

    @classmethod
    def of(cls, periods: Sequence[str]) -> Calendar:
        if not periods:
            raise ValueError("at least one period is needed")
        months = []
        for p in periods:
            m = _PERIOD.fullmatch(p)
            if not m:
                raise ValueError(f"period {p!r} is not YYYY-MM")
            months.append(int(m.group(1)) * 12 + int(m.group(2)) - 1)
        if any(b != a + 1 for a, b in itertools.pairwise(months)):
            raise ValueError("periods must be consecutive months in increasing order")
        return cls(tuple(periods), tuple(months))

    @property
    def n(self) -> int:
        return len(self.periods)

    @property
    def first_month(self) -> int:
        """The first month of the first period's window: where the history starts."""
        return self.months[0] - 11

    def end(self, i: int) -> dt.date:
        return _month_end(self.months[i])

    def window_start(self, i: int) -> dt.date:
        return _month_start(self.months[i] - 11)

    def day(self, i: int, d: int) -> dt.date:
        """Day `d` of period i's month (clamped to the month)."""
        return self._in_month(self.months[0] + i, d)

    def hist(self, k: int, d: int) -> dt.date:
        """Day `d` of the month k months before the first period."""
        return self._in_month(self.months[0] - k, d)

    @staticmethod
    def _in_month(month: int, d: int) -> dt.date:
        return min(_month_start(month) + dt.timedelta(days=d - 1), _month_end(month))

    def delivery(self, day: dt.date) -> int:
        """The period whose files first carry a record dated `day` (history goes to the first)."""
        return max(0, _month_index(day) - self.months[0])

    @property
    def anchor(self) -> dt.date:
        """Planted ages hold from the first period's end to this day (at most 3 periods)."""
        return self.end(min(self.n, 3) - 1)

    def birth_for_age(self, age: int, jitter: int) -> dt.date:
        """A birth date giving completed `age` at the end of each of the first 3 periods.

        The person turns age+1 `jitter` days after the anchor; jitter ≤ 200 keeps the
        earlier period ends (at most ~2 months before the anchor) past the age-th birthday.
        """
        after = self.anchor + dt.timedelta(days=1 + jitter)
        return _shift_years(after, -(age + 1))


def _shift_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a common year
        return day.replace(year=day.year + years, day=28)


def _age_expr(birth: pl.Expr, at: dt.date | pl.Expr) -> pl.Expr:
    """Completed years at `at` (a date or a date column)."""
    at_e = pl.lit(at) if isinstance(at, dt.date) else at
    before = (birth.dt.month() > at_e.dt.month()) | (
        (birth.dt.month() == at_e.dt.month()) & (birth.dt.day() > at_e.dt.day())
    )
    return (at_e.dt.year() - birth.dt.year() - before.cast(pl.Int32)).cast(pl.Int32)


def _rng(seed: int, purpose: str) -> random.Random:
    # A string seed is hashed with SHA-512: stable across runs and PYTHONHASHSEED.
    return random.Random(f"{seed}/{purpose}")


# `random.randint` and `random.choice` cost ~1 µs each through `_randbelow`; these draw
# from `random()` alone, which is plenty uniform for synthetic data and several times faster
# on the hundreds of thousands of people a large county has.
def _randint(rng: random.Random, lo: int, hi: int) -> int:
    return lo + int(rng.random() * (hi - lo + 1))


def _choice(rng: random.Random, seq: Sequence[Any]) -> Any:
    return seq[int(rng.random() * len(seq))]


def _cents(text: str) -> int:
    return int(Decimal(text) * 100)


def _money_text(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


# ------------------------------------------------------------------ file styles


@dataclass(frozen=True)
class FileStyle:
    """How one department writes one month's extract."""

    name: str  # template: {yyyy} {mm} {yyyymm}
    fmt: str  # csv | xlsx | parquet
    encoding: str = "utf-8"  # utf-8 | utf-8-sig | gbk
    lang: str = "zh"  # zh: Chinese aliases; en: the keys
    date_form: str = "iso"  # main text form of dates in csv
    crlf: bool = False
    header_only: bool = False
    quirks: frozenset[str] = frozenset()  # decorated_headers, extra_column, shuffled

    def file_name(self, period: str) -> str:
        yyyy, mm = period.split("-")
        return self.name.format(yyyy=yyyy, mm=mm, yyyymm=yyyy + mm)


_Q = frozenset
# Period i uses STYLES[source][i % 3]: three periods show every form the contract allows;
# None is a source that did not deliver that month.
STYLES: dict[str, tuple[FileStyle | None, ...]] = {
    "roster": (
        FileStyle("人口基础信息{yyyy}年{mm}月.csv", "csv", "gbk", crlf=True),
        FileStyle("roster.parquet", "parquet", lang="en"),
        FileStyle(
            "乡村振兴人口_{yyyymm}.csv",
            "csv",
            "utf-8-sig",
            quirks=_Q({"decorated_headers", "extra_column", "shuffled"}),
        ),
    ),
    "medical": (
        FileStyle("medical.csv", "csv", lang="en", date_form="iso"),
        FileStyle("医保住院结算_{yyyymm}.xlsx", "xlsx", quirks=_Q({"extra_column"})),
        FileStyle("医保结算{yyyymm}.parquet", "parquet"),
    ),
    "education": (
        FileStyle("教育学籍_{yyyymm}.csv", "csv", "utf-8-sig", date_form="compact"),
        FileStyle("education.csv", "csv", "gbk", lang="en", date_form="slash", crlf=True),
        FileStyle(
            "education_{yyyymm}.csv",
            "csv",
            lang="en",
            date_form="chinese",
            quirks=_Q({"decorated_headers"}),
        ),
    ),
    "traffic": (
        FileStyle("交警事故伤亡_{yyyymm}.xlsx", "xlsx"),
        None,
        FileStyle("traffic.csv", "csv", "gbk", date_form="chinese", crlf=True),
    ),
    "civil": (
        FileStyle("民政救助_{yyyymm}.csv", "csv", "gbk", date_form="slash"),
        FileStyle("civil.parquet", "parquet", lang="en"),
        FileStyle("民政救助{yyyymm}.xlsx", "xlsx"),
    ),
    "disability": (
        FileStyle("残联残疾人证_{yyyymm}.xlsx", "xlsx"),
        FileStyle("disability.csv", "csv", lang="en", header_only=True),
        FileStyle("残联_{yyyymm}.csv", "csv", "utf-8-sig", date_form="serial"),
    ),
}


def style_for(source: str, i: int) -> FileStyle | None:
    styles = STYLES[source]
    return styles[i % len(styles)]


# Roster workbook shapes the generator can write instead of the roster's usual files, in
# every period (`screening sample --roster-xlsx`), as registers are often exported:
# merged — 户编号 and 乡镇 merged over each household's rows; title — a title row and a
# 填报单位 row above the header; both.
ROSTER_SHAPES: dict[str, frozenset[str]] = {
    "merged": frozenset({"merged_cells"}),
    "title": frozenset({"title_rows"}),
    "both": frozenset({"merged_cells", "title_rows"}),
}
TITLE_ROWS = 2
MERGED_KEYS = ("household_id", "township")


def roster_xlsx_style(shape: str) -> FileStyle:
    if shape not in ROSTER_SHAPES:
        raise ValueError(f"unknown roster shape {shape!r}; one of {', '.join(ROSTER_SHAPES)}")
    return FileStyle("人口基础信息{yyyy}年{mm}月.xlsx", "xlsx", quirks=ROSTER_SHAPES[shape])


def first_data_row(style: FileStyle) -> int:
    """The spreadsheet row of a file's first record (the header is the row above)."""
    return 2 + (TITLE_ROWS if "title_rows" in style.quirks else 0)


def _accepts_rows(source: str, i: int) -> bool:
    style = style_for(source, i)
    return style is not None and not style.header_only


# ------------------------------------------------------------------ planted cases


@dataclass(frozen=True)
class Member:
    relation: str
    birth: dt.date
    from_period: int = 0  # the first roster snapshot listing this person


@dataclass(frozen=True)
class Event:
    source: str
    member: int
    fields: Mapping[str, Any]
    deliver: int | None = None  # None: the period of its rule date (history → first)
    group: str | None = None  # same group within a case → same natural key
    id_form: str | None = None  # force how the ID is written (e.g. "id15")


@dataclass(frozen=True)
class Case:
    case: str
    description: str
    household_type: str
    monitoring_status: str | None
    income: int  # per-capita income, cents
    members: tuple[Member, ...]
    events: tuple[Event, ...] = ()
    intent: Mapping[int, frozenset[str]] = field(default_factory=dict)
    status_intent: Mapping[int, str] = field(default_factory=dict)
    changes: tuple[tuple[int, str, Any], ...] = ()  # (from period, roster column, value)
    min_periods: int = 1
    town: int | None = None  # the township (by index) when it matters; else spread
    # The township's answer on period 1's list, in the sample feedback file: (核实结果,
    # 核实日期 or None), and the listing status per period once it is imported (None: not
    # listed). Cases with an answer all live in the feedback file's township.
    feedback: tuple[str, dt.date | None] | None = None
    feedback_status: Mapping[int, str | None] = field(default_factory=dict)
    # The household on the roster 12 months before the first period (INCOME_DROP): roster
    # columns that differ then ({} = as in period 1; "<next>" village: the next village),
    # or None: not on it (a household formed since).
    year_before: Mapping[str, Any] | None = field(default_factory=dict)


def _medical_fields(when: dt.date, oop: int, hospital: str = HOSPITALS[0]) -> dict[str, Any]:
    total = oop * 5 // 2
    return {
        "settlement_date": when,
        "admission_date": when - dt.timedelta(days=9),
        "discharge_date": when - dt.timedelta(days=1),
        "hospital": hospital,
        "total_cost": total,
        "fund_paid": total - oop,
        "critical_illness_paid": None,
        "medical_aid_paid": 0,
        "out_of_pocket": oop,
    }


def _education_fields(
    when: dt.date,
    stage: str,
    status: str = "在读",
    fees: tuple[int, int, int, int] = (0, 0, 0, 0),
    school: str | None = None,
) -> dict[str, Any]:
    tuition, accommodation, textbook, aid = fees
    return {
        "record_date": when,
        "school": school or SCHOOLS.get(stage, (f"城关镇{_TOWNSHIP_SCHOOLS.get(stage, '')}",))[0],
        "stage": stage,
        "status": status,
        "tuition": tuition,
        "accommodation": accommodation,
        "textbook": textbook,
        "aid": aid,
    }


def _traffic_fields(when: dt.date, injury: str, direct: int, compensation: int) -> dict[str, Any]:
    return {
        "accident_date": when,
        "injury": injury,
        "direct_loss": direct,
        "compensation": compensation,
    }


def _civil_fields(when: dt.date, kind: str, event: str, amount: int) -> dict[str, Any]:
    return {"assistance_type": kind, "event": event, "event_date": when, "amount": amount}


def _disability_fields(when: dt.date, grade: int, kind: str = "肢体") -> dict[str, Any]:
    return {"disability_type": kind, "grade": grade, "issue_date": when}


class _CaseBook:
    """Shorthands for writing planted cases against a calendar."""

    def __init__(self, cal: Calendar, rng: random.Random) -> None:
        self.cal = cal
        self.rng = rng
        self.families: dict[str, _Family] = {}
        self.n3 = min(cal.n, 3)

    def family(self, head_age: int, *others: tuple[str, int]) -> tuple[Member, ...]:
        people = [("户主", head_age), *others]
        return tuple(
            Member(rel, self.cal.birth_for_age(age, self.rng.randint(0, 200)))
            for rel, age in people
        )

    def every(self, *codes: str) -> dict[int, frozenset[str]]:
        return {i: frozenset(codes) for i in range(self.n3)}

    def per(self, *sets: Iterable[str]) -> dict[int, frozenset[str]]:
        return {i: frozenset(s) for i, s in enumerate(sets) if i < self.n3}

    def statuses(self, *values: str) -> dict[int, str]:
        return {i: v for i, v in enumerate(values) if i < self.n3}

    def med(self, member: int, when: dt.date, oop: str, **kw: Any) -> Event:
        return Event("medical", member, _medical_fields(when, _cents(oop)), **kw)

    def edu(
        self,
        member: int,
        when: dt.date,
        stage: str,
        status: str = "在读",
        fees: tuple[str, str, str, str] = ("0", "0", "0", "0"),
        **kw: Any,
    ) -> Event:
        cents = tuple(_cents(f) for f in fees)
        return Event(
            "education",
            member,
            _education_fields(when, stage, status, (cents[0], cents[1], cents[2], cents[3])),
            **kw,
        )

    def acc(
        self, member: int, when: dt.date, injury: str, direct: str, comp: str, **kw: Any
    ) -> Event:
        return Event(
            "traffic", member, _traffic_fields(when, injury, _cents(direct), _cents(comp)), **kw
        )

    def civ(self, member: int, when: dt.date, kind: str, event: str, amount: str) -> Event:
        return Event("civil", member, _civil_fields(when, kind, event, _cents(amount)))

    def dis(self, member: int, when: dt.date, grade: int, **kw: Any) -> Event:
        return Event("disability", member, _disability_fields(when, grade), **kw)


def planted_cases(cal: Calendar, rng: random.Random) -> list[Case]:
    """Every planted household, with the risk codes it must show in each of the first
    three periods. Cases needing more periods than requested are left out."""
    b = _CaseBook(cal, rng)
    cases = [
        *_medical_cases(b),
        *_education_cases(b),
        *_accident_cases(b),
        *_disability_cases(b),
        *_assistance_cases(b),
        *_household_cases(b),
        *_timeline_cases(b),
        *_feedback_cases(b),
        *_income_drop_cases(b),
        *_reentry_cases(b),
        *_relief_cases(b),
    ]
    return [c for c in cases if c.min_periods <= cal.n]


def _medical_cases(b: _CaseBook) -> list[Case]:
    h, d = b.cal.hist, b.cal.day

    def fam() -> tuple[Member, ...]:
        return b.family(45, ("配偶", 43), ("长子", 19))

    med = "MEDICAL"
    # fmt: off
    return [
        Case("medical_at_threshold_tuopin", "脱贫户 out-of-pocket exactly 5000.00 (≥, listed);"
             " stays listed: 新增 then 持续", "脱贫户", "未监测", _cents("12000"), fam(),
             (b.med(0, h(3, 11), "3200.00"), b.med(1, d(0, 12), "1800.00")),
             b.every(med), b.statuses("新增", "持续", "持续")),
        Case("medical_below_threshold_tuopin", "脱贫户 out-of-pocket 4999.99 (not listed)",
             "脱贫户", "未监测", _cents("12000"), fam(),
             (b.med(0, h(3, 14), "3200.00"), b.med(2, d(0, 5), "1799.99")), b.every()),
        Case("medical_at_threshold_jiance", "监测户 (已消除风险) out-of-pocket exactly 5000.00",
             "监测户", "已消除风险", _cents("11000"), fam(),
             (b.med(0, h(5, 20), "5000.00"),), b.every(med), b.statuses("新增")),
        Case("medical_below_threshold_jiance", "监测户 out-of-pocket 4999.99 (not listed)",
             "监测户", "已消除风险", _cents("11000"), fam(),
             (b.med(1, h(5, 21), "4999.99"),), b.every()),
        Case("medical_at_threshold_yiban", "一般农户 out-of-pocket exactly 20000.00 over two"
             " members", "一般农户", None, _cents("10000"), fam(),
             (b.med(0, h(8, 3), "12000.00"), b.med(1, h(2, 9), "8000.00")), b.every(med)),
        Case("medical_below_threshold_yiban", "一般农户 out-of-pocket 19999.99: above the 5000"
             " of other types, below its own 20000", "一般农户", "未监测", _cents("10000"),
             fam(), (b.med(0, h(8, 4), "12000.00"), b.med(1, h(2, 10), "7999.99")), b.every()),
        Case("medical_15digit_id", "MEDICAL 5000.00 where the hospital wrote the head's"
             " 15-digit first-generation ID", "脱贫户", "未监测", _cents("12000"),
             b.family(50, ("配偶", 48)), (b.med(0, h(4, 17), "5000.00", id_form="id15"),),
             b.every(med)),
        Case("medical_fullwidth_id", "MEDICAL 6100.00 where the ID is in full-width digits",
             "脱贫户", "未监测", _cents("13000"), b.family(38, ("配偶", 36), ("长女", 12)),
             (b.med(1, h(1, 6), "6100.00", id_form="fullwidth"),), b.every(med)),
    ]
    # fmt: on


def _education_cases(b: _CaseBook) -> list[Case]:
    h, d = b.cal.hist, b.cal.day

    def kids() -> tuple[Member, ...]:
        return b.family(46, ("配偶", 44), ("长子", 19), ("长女", 17))

    def drop(age: int) -> tuple[Member, ...]:
        return b.family(age + 26, ("配偶", age + 24), ("长子", age))

    # fmt: off
    return [
        Case("education_above_threshold", "net education cost 8000.01 over two students (>)",
             "一般农户", "未监测", _cents("12000"), kids(),
             (b.edu(2, h(9, 1), "本科", fees=("5200.00", "1000.00", "300.01", "1500.00")),
              b.edu(3, h(4, 2), "高中", fees=("1800.00", "800.00", "400.00", "0"))),
             b.every("EDUCATION")),
        Case("education_at_threshold", "net education cost exactly 8000.00 (not listed)",
             "一般农户", "未监测", _cents("12000"), kids(),
             (b.edu(2, h(9, 1), "本科", fees=("5200.00", "1000.00", "300.00", "1500.00")),
              b.edu(3, h(4, 2), "高中", fees=("1800.00", "800.00", "400.00", "0"))),
             b.every()),
        Case("education_negative_net_clamped", "8200.00 net plus a record whose aid exceeds"
             " its fees by 1500 (counts 0, not −1500)", "脱贫户", "未监测", _cents("12000"),
             kids(),
             (b.edu(2, h(3, 1), "本科", fees=("6000.00", "1500.00", "700.00", "0")),
              b.edu(3, h(3, 3), "高中", fees=("300.00", "0", "200.00", "2000.00"))),
             b.every("EDUCATION")),
        Case("dropout_age_6", "6-year-old whose latest record is 辍学", "一般农户", "未监测",
             _cents("12000"), drop(6),
             (b.edu(2, h(2, 5), "学前"), b.edu(2, d(0, 5), "小学", "辍学")), b.every("DROPOUT")),
        Case("dropout_age_15", "15-year-old whose latest record is 辍学", "脱贫户", "未监测",
             _cents("12000"), drop(15),
             (b.edu(2, h(4, 5), "初中"), b.edu(2, d(0, 6), "初中", "辍学")),
             b.every("DROPOUT")),
        Case("dropout_age_16", "16-year-old 辍学: past compulsory age (not listed)", "一般农户",
             "未监测", _cents("12000"), drop(16),
             (b.edu(2, h(4, 5), "高中"), b.edu(2, d(0, 6), "高中", "辍学")), b.every()),
        Case("dropout_returned", "12-year-old 辍学 earlier, latest record 在读 (not listed)",
             "一般农户", "未监测", _cents("12000"), drop(12),
             (b.edu(2, h(3, 5), "初中", "辍学"), b.edu(2, d(0, 8), "初中")), b.every()),
        Case("dropout_same_day_record_id", "two records on one day: the later record_id"
             " (辍学) is the latest", "一般农户", "未监测", _cents("12000"), drop(10),
             (b.edu(2, d(0, 15), "小学"), b.edu(2, d(0, 15), "小学", "辍学")),
             b.every("DROPOUT")),
    ]
    # fmt: on


def _accident_cases(b: _CaseBook) -> list[Case]:
    h = b.cal.hist

    def fam(head: int) -> tuple[Member, ...]:
        return b.family(head, ("配偶", head - 2), ("长子", 16))

    acc = "ACCIDENT"
    # fmt: off
    return [
        Case("accident_loss_above", "net accident loss 10000.01 (>)", "一般农户", "未监测",
             _cents("12000"), fam(45),
             (b.acc(0, h(4, 8), "轻伤", "25000.01", "15000.00"),), b.every(acc)),
        Case("accident_loss_at", "net accident loss exactly 10000.00 (not listed)",
             "一般农户", "未监测", _cents("12000"), fam(45),
             (b.acc(0, h(4, 8), "轻伤", "25000.00", "15000.00"),), b.every()),
        Case("accident_two_casualties", "one accident, two members hurt: 5500 + 5500 net"
             " (natural key is accident_id + id_number)", "一般农户", "未监测",
             _cents("12000"), fam(45),
             (b.acc(0, h(6, 19), "轻伤", "8000.00", "2500.00", group="a"),
              b.acc(1, h(6, 19), "轻伤", "8000.00", "2500.00", group="a")), b.every(acc)),
        Case("accident_severe_age_59", "重伤 at 59 (working age), no net loss", "脱贫户",
             "未监测", _cents("12000"), fam(59),
             (b.acc(0, h(2, 23), "重伤", "3000.00", "3000.00"),), b.every(acc)),
        Case("accident_death_age_16", "死亡 at 16 (working age)", "一般农户", "未监测",
             _cents("12000"), fam(44),
             (b.acc(2, h(1, 2), "死亡", "2000.00", "0"),), b.every(acc)),
        Case("accident_severe_age_60", "重伤 at 60 (not working age, small loss: not listed)",
             "一般农户", "未监测", _cents("12000"), fam(60),
             (b.acc(0, h(2, 24), "重伤", "2000.00", "0"),), b.every()),
        Case("accident_15digit_numeric_cell", "重伤 at 50; the police wrote a 15-digit ID"
             " (a number cell in their xlsx)", "一般农户", "未监测", _cents("12000"), fam(50),
             (b.acc(0, h(5, 12), "重伤", "6000.00", "4000.00", id_form="id15"),),
             b.every(acc)),
    ]
    # fmt: on


def _disability_cases(b: _CaseBook) -> list[Case]:
    h, d = b.cal.hist, b.cal.day

    def fam() -> tuple[Member, ...]:
        return b.family(40, ("配偶", 38), ("长子", 14))

    before = b.cal.window_start(0) - dt.timedelta(days=400)
    dis = "DISABILITY"
    # fmt: off
    return [
        Case("disability_grade1_in_window", "grade 1 certificate issued in the window",
             "一般农户", "未监测", _cents("12000"), fam(), (b.dis(1, d(0, 20), 1),),
             b.every(dis)),
        Case("disability_grade2_in_window", "grade 2 certificate issued in the window",
             "脱贫户", "未监测", _cents("12000"), fam(), (b.dis(2, h(6, 9), 2),),
             b.every(dis)),
        Case("disability_grade3_in_window", "grade 3 certificate in the window (not listed)",
             "一般农户", "未监测", _cents("12000"), fam(), (b.dis(0, d(0, 3), 3),), b.every()),
        Case("disability_grade1_before_window", "grade 1 certificate issued before the"
             " window (not listed)", "一般农户", "未监测", _cents("12000"), fam(),
             (b.dis(0, before, 1),), b.every()),
        Case("disability_id_from_certificate", "grade 2 in the window, ID column empty:"
             " the 20-character certificate number supplies it", "一般农户", "未监测",
             _cents("12000"), fam(), (b.dis(0, h(1, 15), 2, id_form="empty"),),
             b.every(dis)),
    ]
    # fmt: on


def _assistance_cases(b: _CaseBook) -> list[Case]:
    h, d = b.cal.hist, b.cal.day

    def fam() -> tuple[Member, ...]:
        return b.family(52, ("配偶", 50), ("长女", 22))

    ast = "ASSISTANCE"
    # fmt: off
    return [
        Case("assistance_temporary", "临时救助 发放 (any 临时救助 event)", "一般农户", "未监测",
             _cents("9000"), fam(), (b.civ(0, h(2, 18), "临时救助", "发放", "2000.00"),),
             b.every(ast)),
        Case("assistance_dibao_new", "低保 新增", "脱贫户", "未监测", _cents("6800"), fam(),
             (b.civ(0, d(0, 10), "低保", "新增", "1350.00"),
              b.civ(0, d(0, 10), "低保", "发放", "1350.00")), b.every(ast)),
        Case("assistance_tekun_new", "特困供养 新增 for an old man living alone", "脱贫户",
             "未监测", _cents("9000"), b.family(78),
             (b.civ(0, h(7, 1), "特困供养", "新增", "700.00"),), b.every(ast)),
        Case("assistance_dibao_renewal", "低保 续保 and 发放 only (not listed)", "脱贫户",
             "未监测", _cents("6800"), fam(),
             (b.civ(0, h(4, 15), "低保", "续保", "1350.00"),
              b.civ(0, h(4, 10), "低保", "发放", "1350.00")), b.every()),
        Case("assistance_low_income_family_new", "低收入家庭 新增 is not a rule trigger"
             " (not listed)", "一般农户", "未监测", _cents("7500"), fam(),
             (b.civ(0, d(0, 9), "低收入家庭", "新增", "0"),), b.every()),
    ]
    # fmt: on


def _household_cases(b: _CaseBook) -> list[Case]:
    h = b.cal.hist

    def fam() -> tuple[Member, ...]:
        return b.family(45, ("配偶", 43), ("长子", 19))

    # fmt: off
    return [
        Case("spending_only", "rigid expenditure 7000 > income 6500 × 1 while medical 4000"
             " and accident 3000 stay under their thresholds", "脱贫户", "未监测",
             _cents("6500"), b.family(50),
             (b.med(0, h(3, 4), "4000.00"), b.acc(0, h(5, 7), "轻伤", "5000.00", "2000.00")),
             b.every("SPENDING")),
        Case("spending_equals_income", "rigid expenditure exactly equals income 6200 × 2"
             " (medical 4400 + education exactly 8000: nothing listed)", "脱贫户", "未监测",
             _cents("6200"), b.family(48, ("长子", 19)),
             (b.med(0, h(2, 4), "4400.00"),
              b.edu(1, h(4, 2), "本科", fees=("6000.00", "1500.00", "500.00", "0"))),
             b.every()),
        Case("multi_risk_red", "MEDICAL + DISABILITY → 红", "脱贫户", "未监测",
             _cents("12000"), fam(), (b.med(0, h(2, 4), "5600.00"), b.dis(2, h(3, 2), 1)),
             b.every("MEDICAL", "DISABILITY")),
        Case("low_income_and_medical_red", "LOW_INCOME + MEDICAL → 红", "监测户", "已消除风险",
             _cents("4800"), b.family(44, ("配偶", 42), ("长子", 17), ("长女", 13)),
             (b.med(0, h(1, 4), "5000.00"),), b.every("LOW_INCOME", "MEDICAL")),
        Case("low_income_only", "per-capita income 5999.99: LOW_INCOME alone → 黄", "一般农户",
             None, _cents("5999.99"), fam(), (), b.every("LOW_INCOME")),
        Case("income_at_line", "per-capita income exactly 6000.00 (not listed)", "一般农户",
             "未监测", _cents("6000"), fam(), (), b.every()),
        Case("monitored_with_risk", "监测中 household with MEDICAL → 已在监测", "监测户",
             "监测中", _cents("9000"), fam(), (b.med(0, h(4, 4), "6000.00"),),
             b.every("MEDICAL"), b.statuses("已在监测", "已在监测", "已在监测")),
        Case("monitored_no_risk", "监测中 household without risk (not listed)", "监测户",
             "监测中", _cents("9500"), fam(), (), b.every()),
        Case("no_head_low_income", "no member marked 户主 (the first member stands in);"
             " LOW_INCOME", "一般农户", "未监测", _cents("4200"),
             (Member("配偶", b.cal.birth_for_age(70, 30)),
              Member("长子", b.cal.birth_for_age(45, 60))), (), b.every("LOW_INCOME")),
    ]
    # fmt: on


def _timeline_cases(b: _CaseBook) -> list[Case]:
    cal, h, d = b.cal, b.cal.hist, b.cal.day

    def fam() -> tuple[Member, ...]:
        return b.family(45, ("配偶", 43), ("长子", 19))

    ws = cal.window_start(0)
    med = "MEDICAL"
    # fmt: off
    return [
        Case("starts_in_period_2", "first settlement in period 2: 新增 there, then 持续",
             "脱贫户", "未监测", _cents("12000"), fam(), (b.med(0, d(1, 6), "5500.00"),),
             b.per((), [med], [med]), b.statuses("", "新增", "持续"), min_periods=2),
        Case("late_record", "a settlement of period 1 delivered late with period 2",
             "脱贫户", "未监测", _cents("12000"), fam(),
             (b.med(0, d(0, 25), "5500.00", deliver=1),), b.per((), [med], [med]),
             b.statuses("", "新增", "持续"), min_periods=2),
        Case("correction_drops_listing", "5200.00 in period 1 (listed), re-sent in period 2"
             " corrected to 4800.00 (same settlement_id: no longer listed)", "脱贫户", "未监测",
             _cents("12000"), fam(),
             (b.med(0, d(0, 8), "5200.00", group="s"),
              b.med(0, d(0, 8), "4800.00", group="s", deliver=1)),
             b.per([med], [], []), b.statuses("新增"), min_periods=2),
        Case("correction_raises_listing", "4800.00 in period 1, re-sent in period 2 corrected"
             " to 5200.00 (新增 in period 2)", "监测户", "已消除风险", _cents("12000"), fam(),
             (b.med(1, d(0, 9), "4800.00", group="s"),
              b.med(1, d(0, 9), "5200.00", group="s", deliver=1)),
             b.per([], [med], [med]), b.statuses("", "新增", "持续"), min_periods=2),
        Case("window_first_day", "settlement dated the first day of period 1's window: counts"
             " in period 1, has left the window by period 2", "脱贫户", "未监测",
             _cents("12000"), fam(), (b.med(0, ws, "5000.00"),), b.per([med], [], []),
             min_periods=2),
        Case("window_day_before", "settlement dated the day before period 1's window (not"
             " listed)", "脱贫户", "未监测", _cents("12000"), fam(),
             (b.med(0, ws - dt.timedelta(days=1), "5000.00"),), b.every()),
        Case("relisted_after_gap", "listed in period 1, off in period 2 (window), back in"
             " period 3 with a new settlement: 新增 again", "脱贫户", "未监测", _cents("12000"),
             fam(), (b.med(0, ws, "5000.00"), b.med(1, d(2, 4), "5000.00")),
             b.per([med], [], [med]), b.statuses("新增", "", "新增"), min_periods=3),
        Case("moved_village", "MEDICAL household that moves to another village in period 2",
             "脱贫户", "未监测", _cents("12000"), fam(), (b.med(0, h(2, 9), "5500.00"),),
             b.every(med), b.statuses("新增", "持续", "持续"),
             changes=((1, "village", "<next>"),), min_periods=2),
        Case("baby_born", "SPENDING (14500 > 7000 × 2) until a baby born in period 2 makes"
             " the household 3 (income 21000)", "脱贫户", "未监测", _cents("7000"),
             (*b.family(28, ("配偶", 26)), Member("长子", d(1, 3), from_period=1)),
             (b.med(0, h(3, 4), "4900.00"), b.acc(1, h(5, 7), "轻伤", "12000.00", "2400.00")),
             b.per(["SPENDING"], [], []), min_periods=2),
        Case("entered_monitoring", "一般农户 listed 新增 in period 1 becomes 监测户 监测中 in"
             " period 2 (已在监测)", "一般农户", "未监测", _cents("10000"), fam(),
             (b.med(0, h(5, 4), "13000.00"), b.med(1, h(1, 4), "8000.00")), b.every(med),
             b.statuses("新增", "已在监测", "已在监测"),
             changes=((1, "household_type", "监测户"), (1, "monitoring_status", "监测中")),
             min_periods=2),
    ]
    # fmt: on


FEEDBACK_TOWN = 0  # the sample feedback file is from the first (largest) township


def _feedback_cases(b: _CaseBook) -> list[Case]:
    """Households the sample feedback file answers (on period 1's list, dated in period 2),
    with their statuses once it is imported; without it they follow `status_intent`."""
    h, d = b.cal.hist, b.cal.day

    def fam() -> tuple[Member, ...]:
        return b.family(45, ("配偶", 43), ("长子", 19))

    med = "MEDICAL"
    # fmt: off
    return [
        Case("declined_then_new_settlement", "不予纳入 on period 1's list: off the list in"
             " period 2, back as 新增 in period 3 with a settlement dated after the decision",
             "脱贫户", "未监测", _cents("12000"), fam(),
             (b.med(0, h(2, 5), "5500.00"), b.med(1, d(2, 6), "900.00")), b.every(med),
             b.statuses("新增", "持续", "持续"), town=FEEDBACK_TOWN, min_periods=3,
             feedback=("不予纳入", d(1, 10)), feedback_status={0: "新增", 1: None, 2: "新增"}),
        Case("declined_stays_off", "不予纳入 on period 1's list and no newer record: stays off",
             "脱贫户", "未监测", _cents("12000"), fam(), (b.med(0, h(3, 5), "6000.00"),),
             b.every(med), b.statuses("新增", "持续", "持续"), town=FEEDBACK_TOWN,
             min_periods=3, feedback=("不予纳入", d(1, 12)),
             feedback_status={0: "新增", 1: None, 2: None}),
        Case("confirmed_until_monitored", "确认纳入 on period 1's list: 已确认待录入 until the"
             " roster shows 监测中 in period 3", "脱贫户", "未监测", _cents("12000"), fam(),
             (b.med(0, h(2, 8), "5600.00"),), b.every(med),
             b.statuses("新增", "持续", "已在监测"),
             changes=((2, "household_type", "监测户"), (2, "monitoring_status", "监测中")),
             town=FEEDBACK_TOWN, min_periods=3, feedback=("确认纳入", d(1, 9)),
             feedback_status={0: "新增", 1: "已确认待录入", 2: "已在监测"}),
        Case("pending_stays", "待核实 (no date) on period 1's list: stays 持续", "脱贫户",
             "未监测", _cents("12000"), fam(), (b.med(1, h(1, 3), "5100.00"),), b.every(med),
             b.statuses("新增", "持续", "持续"), town=FEEDBACK_TOWN, min_periods=3,
             feedback=("待核实", None), feedback_status={0: "新增", 1: "持续", 2: "持续"}),
    ]
    # fmt: on


def _income_drop_cases(b: _CaseBook) -> list[Case]:
    """收入骤减 INCOME_DROP against the roster 12 months before the first period (written
    as that period's roster file): the 30 % edge, the ceiling of twice the line, a
    household not on that roster, one that has moved village since."""

    def fam() -> tuple[Member, ...]:
        return b.family(47, ("配偶", 45), ("长女", 20))

    drop = "INCOME_DROP"

    def then(income: str, **more: Any) -> dict[str, Any]:
        return {"per_capita_income": _cents(income), **more}

    # fmt: off
    return [
        Case("income_drop_30", "per-capita income 7000.00, 10000.00 a year before: exactly"
             " 30 % lower (≥, listed)", "一般农户", "未监测", _cents("7000"), fam(),
             intent=b.every(drop), status_intent=b.statuses("新增", "持续", "持续"),
             year_before=then("10000")),
        Case("income_drop_short", "7000.01 against 10000.00: 0.01 short of 30 % (not listed)",
             "一般农户", "未监测", _cents("7000.01"), fam(), intent=b.every(),
             year_before=then("10000")),
        Case("income_drop_below_line", "5000.00 against 9000.00: INCOME_DROP and LOW_INCOME"
             " → 红", "脱贫户", "未监测", _cents("5000"), fam(),
             intent=b.every(drop, "LOW_INCOME"), year_before=then("9000")),
        Case("income_drop_under_ceiling", "11999.99 against 20000.00: 40 % lower and under"
             " twice the line", "一般农户", "未监测", _cents("11999.99"), fam(),
             intent=b.every(drop), year_before=then("20000")),
        Case("income_drop_at_ceiling", "12000.00 against 20000.00: 40 % lower but at twice"
             " the line (not listed)", "一般农户", "未监测", _cents("12000"), fam(),
             intent=b.every(), year_before=then("20000")),
        Case("income_drop_not_on_earlier_roster", "7000.00, a household formed since the"
             " roster of a year before: not evaluated (not listed)", "一般农户", "未监测",
             _cents("7000"), fam(), intent=b.every(), year_before=None),
        Case("income_drop_moved_village", "6500.00 against 10000.00 in another village a"
             " year before: the same household, listed", "一般农户", "未监测", _cents("6500"),
             fam(), intent=b.every(drop), year_before=then("10000", village="<next>")),
    ]
    # fmt: on


def _reentry_cases(b: _CaseBook) -> list[Case]:
    """不予纳入 on period 1's list, then (screening-rules.md, "Listing status"): a new bill
    that SPENDING cites brings the household back (the held-out county's case: declined
    on the last day of period 1, an education bill early in period 2); a fee record fully
    covered by aid does not; a risk code the list did not show does (income fallen below
    the line, a state)."""
    h, d = b.cal.hist, b.cal.day

    def student() -> tuple[Member, ...]:
        return b.family(46, ("长子", 17))

    spend, med = "SPENDING", "MEDICAL"
    # rigid 12000.00 + 1464.53 > income 6500.00 × 2, and MEDICAL (20000 for 一般农户) and
    # EDUCATION (8000) are far off: only SPENDING cites the education bills.
    bills = (b.med(0, h(3, 4), "12000.00"),
             b.edu(1, h(2, 1), "高中", fees=("1464.53", "0", "0", "0")))  # fmt: skip
    # fmt: off
    return [
        Case("declined_then_new_bill", "SPENDING declined on period 1's last day; an"
             " education bill early in period 2 raises the rigid spending: back as 新增",
             "一般农户", "未监测", _cents("6500"), student(),
             (*bills, b.edu(1, d(1, 8), "高中", fees=("900.00", "0", "0", "0"))),
             b.every(spend), b.statuses("新增", "持续", "持续"), town=FEEDBACK_TOWN,
             min_periods=3, feedback=("不予纳入", d(0, 31)),
             feedback_status={0: "新增", 1: "新增", 2: "新增"}),
        Case("declined_then_aided_fee", "SPENDING declined on period 1's last day; a fee"
             " record in period 2 fully covered by aid adds nothing: stays off", "一般农户",
             "未监测", _cents("6500"), student(),
             (*bills, b.edu(1, d(1, 8), "高中", fees=("900.00", "0", "0", "900.00"))),
             b.every(spend), b.statuses("新增", "持续", "持续"), town=FEEDBACK_TOWN,
             min_periods=3, feedback=("不予纳入", d(0, 31)),
             feedback_status={0: "新增", 1: None, 2: None}),
        Case("declined_then_new_code", "MEDICAL declined on period 1's list; income falls"
             " below the line in period 3 (LOW_INCOME and INCOME_DROP, codes that list did"
             " not show): back as 新增", "脱贫户", "未监测", _cents("12000"),
             b.family(45, ("配偶", 43), ("长子", 19)), (b.med(0, h(2, 8), "5600.00"),),
             b.per([med], [med], [med, "LOW_INCOME", "INCOME_DROP"]),
             b.statuses("新增", "持续", "持续"),
             changes=((2, "per_capita_income", _cents("5800")),), town=FEEDBACK_TOWN,
             min_periods=3, feedback=("不予纳入", d(1, 11)),
             feedback_status={0: "新增", 1: None, 2: "新增"}),
    ]
    # fmt: on


def _relief_cases(b: _CaseBook) -> list[Case]:
    """A household whose bills reach every kind of Liling's 防贫保 schedule (the demo screens
    one month with parameters/examples/liling.yaml): 62000.00 + 21000.00 in hospital,
    25000.00 lost in an accident nobody paid for, 12000.00 of schooling."""
    h = b.cal.hist
    # fmt: off
    return [
        Case("relief_every_kind", "MEDICAL, EDUCATION, ACCIDENT, SPENDING → 红; under Liling's"
             " schedule 17100.00 + 350.00 (illness), 1750.00 (accident), 3800.00 (schooling)",
             "脱贫户", "未监测", _cents("12000"), b.family(48, ("配偶", 46), ("长子", 19)),
             (b.med(0, h(4, 10), "40000.00"), b.med(0, h(1, 12), "22000.00"),
              b.med(1, h(2, 3), "21000.00"), b.acc(1, h(5, 6), "轻伤", "25000.00", "0"),
              b.edu(2, h(3, 1), "本科", fees=("9000.00", "1800.00", "1200.00", "0"))),
             b.every("MEDICAL", "EDUCATION", "ACCIDENT", "SPENDING"),
             b.statuses("新增", "持续", "持续")),
    ]
    # fmt: on


# ------------------------------------------------------------------ the county model


@dataclass
class County:
    """Everything generated, as typed frames (money in cents), before any file is written."""

    cal: Calendar
    seed: int
    households: int
    cases: list[Case]
    rosters: list[pl.DataFrame]  # per period, valid rows and the odd invalid one
    events: dict[str, pl.DataFrame]  # per source, every delivered row with `_deliver`
    expected: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    planted: list[dict[str, Any]] = field(default_factory=list)
    roster_shape: str | None = None  # a key of ROSTER_SHAPES: the roster as such an xlsx
    # The roster snapshot 12 months before the first period (INCOME_DROP compares with it).
    year_before: pl.DataFrame | None = None
    # The last period's listed households with a 防贫保 estimate above 0 under Liling's
    # schedule (cents); every other listed household's is 0.
    relief: dict[str, int] = field(default_factory=dict)

    def style(self, source: str, i: int) -> FileStyle | None:
        """How period i's file of `source` is written."""
        if source == "roster" and self.roster_shape is not None:
            return roster_xlsx_style(self.roster_shape)
        return style_for(source, i)

    def delivery(self, source: str, i: int) -> pl.DataFrame:
        """The rows of period i's file for `source`, in file order."""
        if source == "roster":
            return self.rosters[i]
        return _file_order(source, self.events[source].filter(pl.col("_deliver") == i))


def _typed_schema(source: str) -> dict[str, pl.DataType]:
    dtypes: dict[str, pl.DataType] = {
        "text": pl.String(),
        "id": pl.String(),
        "enum": pl.String(),
        "date": pl.Date(),
        "money": pl.Int64(),
        "grade": pl.Int8(),
    }
    return {k: dtypes[c.type] for k, c in contract.load()[source].columns.items()}


def _meta_schema() -> dict[str, pl.DataType]:
    return {
        "_pid": pl.Int64(),
        "_grp": pl.Int64(),
        "_deliver": pl.Int32(),
        "_case": pl.String(),
        "_id_form": pl.String(),
        "_check": pl.String(),
        "_column": pl.String(),
        "_override": pl.String(),
    }


def _frame(source: str, rows: list[dict[str, Any]]) -> pl.DataFrame:
    schema = {**_typed_schema(source), **_meta_schema()}
    return pl.DataFrame([{k: r.get(k) for k in schema} for r in rows], schema=schema)


def _rule_date(source: str) -> str:
    date = contract.load()[source].rule_date
    if date is None:
        raise SampleError(f"{source} has no rule date")
    return date


def _file_order(source: str, rows: pl.DataFrame) -> pl.DataFrame:
    keys = list(contract.load()[source].natural_key)
    return rows.sort([_rule_date(source), *keys, "_grp"], nulls_last=True, maintain_order=True)


# ------------------------------------------------------------------ geography & households


@dataclass(frozen=True)
class Township:
    code: int
    name: str
    weight: float
    villages: tuple[str, ...]


def _geography(households: int, rng: random.Random) -> list[Township]:
    count = max(
        1,
        min(
            round(households / 60),
            8 + round(3 * math.log10(max(households, 1))),
            len(TOWNSHIP_NAMES),
        ),
    )
    weights = [2.0] + [rng.uniform(0.6, 1.4) for _ in range(count - 1)]
    total = sum(weights)
    towns = []
    for t, (name, w) in enumerate(zip(TOWNSHIP_NAMES, weights, strict=False)):
        villages = min(20, max(4, round(households * w / total / 250)))
        towns.append(Township(101 + t, name, w, tuple(rng.sample(VILLAGE_NAMES, villages))))
    return towns


def _household_income(rng: random.Random, household_type: str) -> int:
    # Log-normal around the line: ~5 % of households fall below 6000 yuan per person.
    mu = {"脱贫户": 0.6, "监测户": 0.45, "一般农户": 0.75}[household_type]
    yuan = 6000 * math.exp(rng.gauss(mu, 0.42))
    return max(150_000, round(yuan * 100))


def _household_frame(
    households: int, cases: list[Case], towns: list[Township], rng: random.Random
) -> pl.DataFrame:
    """One row per household (background first, then planted), IDs assigned by village."""
    background = households - len(cases)
    kinds = rng.choices(("脱贫户", "监测户", "一般农户"), (20, 3, 77), k=background)
    statuses = [
        _choice(rng, ("监测中",) * 4 + ("已消除风险",))
        if kind == "监测户"
        else _choice(rng, ("未监测", "未监测", None))  # an empty status means 未监测
        for kind in kinds
    ]
    frame = pl.DataFrame(
        {
            "_town": rng.choices(range(len(towns)), [t.weight for t in towns], k=background)
            + [k % len(towns) if c.town is None else c.town for k, c in enumerate(cases)],
            "household_type": kinds + [c.household_type for c in cases],
            "monitoring_status": statuses + [c.monitoring_status for c in cases],
            "per_capita_income": [_household_income(rng, kind) for kind in kinds]
            + [c.income for c in cases],
            "_case": [None] * background + [c.case for c in cases],
            "_template": rng.choices(
                range(len(TEMPLATES)), [w for w, _, _ in TEMPLATES], k=background
            )
            + [-1] * len(cases),
        },
        schema_overrides={"monitoring_status": pl.String(), "_case": pl.String()},
    )
    village = [_randint(rng, 0, len(towns[t].villages) - 1) for t in frame["_town"].to_list()]
    frame = frame.with_columns(
        township=pl.col("_town").replace_strict(
            list(range(len(towns))), [t.name for t in towns], return_dtype=pl.String
        ),
        _tcode=(pl.col("_town") + 101).cast(pl.Int64),
        _vcode=pl.Series(village, dtype=pl.Int64) + 1,
        village=pl.Series(
            [towns[t].villages[v] for t, v in zip(frame["_town"], village, strict=True)]
        ),
        _shuffle=pl.Series([rng.random() for _ in range(frame.height)]),
    )
    number = (pl.int_range(pl.len()).over(["_tcode", "_vcode"]) + 1).cast(pl.String).str.zfill(4)
    return (
        frame.sort(["_tcode", "_vcode", "_shuffle"])
        .with_columns(
            household_id=pl.concat_str(
                [
                    pl.lit(COUNTY),
                    pl.col("_tcode").cast(pl.String),
                    pl.col("_vcode").cast(pl.String).str.zfill(3),
                    number,
                ]
            )
        )
        .drop("_shuffle", "_town")
    )


# ------------------------------------------------------------------ people


class _People:
    """Person columns filled one person at a time (Python lists, turned into one frame)."""

    def __init__(self, cal: Calendar, rng: random.Random) -> None:
        self.cal = cal
        self.rng = rng
        self.families: dict[str, _Family] = {}
        self.cols: dict[str, list[Any]] = {
            k: []
            for k in (
                "household_id",
                "relation",
                "_rank",
                "name",
                "_sex",
                "_birth",
                "_region",
                "_from",
                "_case",
            )
        }

    def add(
        self,
        household_id: str | None,
        relation: str,
        rank: int,
        surname: str,
        sex: int,
        birth: dt.date,
        region: str = COUNTY,
        from_period: int = 0,
        case: str | None = None,
    ) -> None:
        c = self.cols
        c["household_id"].append(household_id)
        c["relation"].append(relation)
        c["_rank"].append(rank)
        c["name"].append(surname + self.given_name(sex, birth.year))
        c["_sex"].append(sex)
        c["_birth"].append(birth)
        c["_region"].append(region)
        c["_from"].append(from_period)
        c["_case"].append(case)

    def surname(self) -> str:
        return self.rng.choices(SURNAMES, cum_weights=_SURNAME_CUM)[0]

    def given_name(self, sex: int, year: int) -> str:
        old = year < 1980
        pool = (
            (_MALE_OLD if old else _MALE_YOUNG) if sex else (_FEMALE_OLD if old else _FEMALE_YOUNG)
        )
        first = _choice(self.rng, pool)
        return first + _choice(self.rng, pool) if self.rng.random() < 0.75 else first

    def birth(self, age: int) -> dt.date:
        anchor = self.cal.end(0)
        return anchor - dt.timedelta(days=int(age * 365.2425) + _randint(self.rng, 1, 364))

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            self.cols,
            schema={
                "household_id": pl.String(),
                "relation": pl.String(),
                "_rank": pl.Int32(),
                "name": pl.String(),
                "_sex": pl.Int32(),
                "_birth": pl.Date(),
                "_region": pl.String(),
                "_from": pl.Int32(),
                "_case": pl.String(),
            },
        )


@dataclass
class _Family:
    """What the members of one background household derive their age and surname from."""

    people: _People
    head_age: int
    head_sex: int
    surname: str
    spouse_surname: str
    children_surname: str
    couple: bool = False
    sons: int = 0
    daughters: int = 0
    first_child_age: int = 0

    def rand(self, lo: int, hi: int) -> int:
        return _randint(self.people.rng, lo, hi)


Slot = tuple[str, str, int, int]  # relation, surname, sex, age


def _spouse(f: _Family) -> Slot:
    return "配偶", f.spouse_surname, 1 - f.head_sex, max(20, f.head_age + f.rand(-6, 3))


def _parent(f: _Family) -> Slot:
    sex = int(f.people.rng.random() >= 0.7)  # mothers outlive fathers
    age = min(96, f.head_age + f.rand(22, 30))
    return ("父亲", f.surname, 1, age) if sex else ("母亲", f.people.surname(), 0, age)


def _child(f: _Family, eldest_son: bool) -> Slot:
    sex = 1 if eldest_son and f.sons == 0 else f.rand(0, 1)
    order = f.sons if sex else f.daughters
    relation = ("长子", "次子", "三子")[order] if sex else ("长女", "次女", "三女")[order]
    f.sons, f.daughters = f.sons + sex, f.daughters + 1 - sex
    age = f.head_age - f.rand(22, 32) - 3 * (f.sons + f.daughters - 1)
    age = age if age >= 0 else f.rand(0, 2)
    f.first_child_age = f.first_child_age or age
    return relation, f.children_surname, sex, age


def _daughter_in_law(f: _Family) -> Slot:
    return "儿媳", f.people.surname(), 0, max(20, f.first_child_age + f.rand(-3, 3))


def _grandchild(f: _Family) -> Slot:
    sex = f.rand(0, 1)
    age = f.first_child_age - f.rand(22, 36)
    return ("孙子" if sex else "孙女"), f.children_surname, sex, age if age >= 0 else f.rand(0, 4)


def _add_background_household(people: _People, hid: str, template: int) -> None:
    rng = people.rng
    _, (lo, hi), slots = TEMPLATES[template]
    head_sex = int(rng.random() < 0.85)
    surname, spouse_surname = people.surname(), people.surname()
    # Children carry the father's surname: the head's, or the husband's if the head is a woman.
    children = surname if head_sex or "spouse" not in slots else spouse_surname
    head_age = _randint(rng, lo, hi)
    f = _Family(people, head_age, head_sex, surname, spouse_surname, children, "spouse" in slots)
    people.families[hid] = f
    people.add(hid, "户主", 0, surname, head_sex, people.birth(f.head_age))
    with_dil = "dil" in slots
    for rank, slot in enumerate(slots, start=1):
        if slot == "spouse":
            member = _spouse(f)
        elif slot == "parent":
            member = _parent(f)
        elif slot == "child":
            member = _child(f, eldest_son=with_dil)
        elif slot == "dil":
            member = _daughter_in_law(f)
        else:
            member = _grandchild(f)
        relation, member_surname, sex, age = member
        people.add(hid, relation, rank, member_surname, sex, people.birth(age))


def _add_babies(people: _People) -> None:
    """A few background births after the first period: households grow between snapshots."""
    cal, rng = people.cal, people.rng
    young = [(hid, f) for hid, f in people.families.items() if f.couple and f.head_age < 40]
    for i in range(1, cal.n):
        for hid, f in young:
            if rng.random() < 0.01:
                sex = _randint(rng, 0, 1)
                order = min(f.sons if sex else f.daughters, 2)
                relation = (
                    ("长子", "次子", "三子")[order] if sex else ("长女", "次女", "三女")[order]
                )
                f.sons, f.daughters = f.sons + sex, f.daughters + 1 - sex
                birth = cal.day(i, _randint(rng, 1, 28))
                people.add(hid, relation, 9, f.children_surname, sex, birth, from_period=i)


def _add_planted(people: _People, households: pl.DataFrame, cases: list[Case]) -> None:
    ids_by_case = dict(
        households.filter(pl.col("_case").is_not_null()).select("_case", "household_id").iter_rows()
    )
    for case in cases:
        hid = ids_by_case[case.case]
        surname = people.surname()
        for rank, m in enumerate(case.members):
            sex = 1 if m.relation in MALE_RELATIONS else 0
            if m.relation == "配偶":  # the head is a man unless no one is marked 户主
                sex = 0
            own = surname if m.relation not in IN_LAWS else people.surname()
            people.add(
                hid, m.relation, rank, own, sex, m.birth, from_period=m.from_period, case=case.case
            )


def _add_outsiders(people: _People, count: int) -> None:
    rng = people.rng
    for _ in range(count):
        sex = rng.randint(0, 1)
        age = rng.randint(1, 85)
        region = rng.choice(NEIGHBOUR_REGIONS + FAR_REGIONS)
        people.add(None, "", 0, people.surname(), sex, people.birth(age), region=region)


def _with_ids(persons: pl.DataFrame, chunks: _Chunks | None = None) -> pl.DataFrame:
    """GB 11643 numbers: region, birth date, a sequence unique per (region, birth, sex)
    whose last digit is odd for men, and the check character. A chunk of a large county
    goes on numbering from the chunks before it."""
    k = pl.int_range(pl.len()).over(["_region", "_birth", "_sex"])
    region = pl.col("_region")
    if chunks is not None:
        persons = chunks.number_from(persons)
        k = k + pl.col("_seen")
        # Only 450 people of one sex can be born on one day in one region: past that, a
        # region code no one else uses (100 above) takes over.
        region = (pl.col("_region").cast(pl.Int64) + 100 * (k // 450)).cast(pl.String)
    start = (pl.col("_birth").cast(pl.Int64) * 7 + pl.col("_region").cast(pl.Int64)) % 450
    base = (start + k * 37) % 450  # 37 is prime to 450: distinct for the first 450 people
    seq = 100 + 2 * base + pl.col("_sex")
    first17 = pl.concat_str([region, pl.col("_birth").dt.strftime("%Y%m%d"), seq.cast(pl.String)])
    return (
        persons.with_columns(_first17=first17)
        .with_columns(
            id_number=pl.concat_str([pl.col("_first17"), _check_char(pl.col("_first17"))])
        )
        .drop("_first17", *(["_seen"] if chunks is not None else []))
    )


def _check_char(first17: pl.Expr) -> pl.Expr:
    total = pl.sum_horizontal(
        [first17.str.slice(i, 1).cast(pl.Int32) * w for i, w in enumerate(ids.WEIGHTS)]
    )
    return (total % 11).replace_strict(
        list(range(11)), list(ids.CHECK_CHARS), return_dtype=pl.String
    )


def _people(
    cal: Calendar,
    households: pl.DataFrame,
    cases: list[Case],
    rng: random.Random,
    chunks: _Chunks | None = None,
) -> pl.DataFrame:
    people = _People(cal, rng)
    for hid, template in (
        households.filter(pl.col("_case").is_null()).select("household_id", "_template").iter_rows()
    ):
        _add_background_household(people, hid, template)
    _add_babies(people)
    _add_planted(people, households, cases)
    roster_people = len(people.cols["name"])
    _add_outsiders(people, max(12, roster_people // 40))
    frame = people.frame().with_row_index("_pid").with_columns(pl.col("_pid").cast(pl.Int64))
    return _with_ids(frame, chunks)


# ------------------------------------------------------------------ rosters


def _household_attrs(households: pl.DataFrame, cases: list[Case], i: int) -> pl.DataFrame:
    """Household columns as the roster of period i shows them (planted changes applied)."""
    frame = households
    hid_of = dict(
        households.filter(pl.col("_case").is_not_null()).select("_case", "household_id").iter_rows()
    )
    for case in cases:
        for start, column, value in case.changes:
            if start > i:
                continue
            new = value
            if value == "<next>":  # the next village of the same township
                row = households.filter(pl.col("household_id") == hid_of[case.case]).row(
                    0, named=True
                )
                new = _next_village(row["township"], row["village"], households)
            frame = frame.with_columns(
                pl.when(pl.col("household_id") == hid_of[case.case])
                .then(pl.lit(new))
                .otherwise(pl.col(column))
                .alias(column)
            )
    return frame


def _next_village(township: str, village: str, households: pl.DataFrame) -> str:
    names = sorted(households.filter(pl.col("township") == township)["village"].unique().to_list())
    return names[(names.index(village) + 1) % len(names)] if len(names) > 1 else village + "新区"


def _roster(
    cal: Calendar,
    persons: pl.DataFrame,
    households: pl.DataFrame,
    cases: list[Case],
    i: int,
    rng: random.Random,
) -> pl.DataFrame:
    attrs = _household_attrs(households, cases, i).select(
        "household_id",
        "township",
        "village",
        "household_type",
        "monitoring_status",
        "per_capita_income",
        "_tcode",
        "_vcode",
    )
    members = persons.filter(pl.col("household_id").is_not_null() & (pl.col("_from") <= i))
    roster = members.join(attrs, on="household_id", how="left", maintain_order="left").with_columns(
        _grp=pl.col("_pid"),
        _deliver=pl.lit(i, pl.Int32),
        _id_form=pl.lit(None, pl.String),
        _check=pl.lit(None, pl.String),
        _column=pl.lit(None, pl.String),
        _override=pl.lit(None, pl.String),
    )
    roster = pl.concat([roster, _ghost_rows(roster, rng)], how="diagonal_relaxed")
    return roster.sort(["_tcode", "_vcode", "household_id", "_rank", "_pid"])


def _ghost_rows(roster: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    """Members typed in with a wrong check digit: quarantined, so never part of a household."""
    sizes = roster.filter(pl.col("_case").is_null()).group_by("household_id").len()
    big = sorted(sizes.filter(pl.col("len") >= 2)["household_id"].to_list())
    chosen = rng.sample(big, min(2, len(big)))
    rows = roster.filter(pl.col("household_id").is_in(chosen) & (pl.col("_rank") == 0))
    return rows.sort("household_id").with_columns(
        id_number=_corrupt_check(pl.col("id_number")),
        name=pl.concat_str([pl.col("name").str.slice(0, 1), pl.lit("建军")]),
        relation=pl.lit("兄弟"),
        _rank=pl.lit(8, pl.Int32),
        _pid=pl.lit(-1, pl.Int64),
        _check=pl.lit("invalid_id"),
        _column=pl.lit("id_number"),
    )


def _corrupt_check(id18: pl.Expr) -> pl.Expr:
    """The same 17 digits with the next check character along: a wrong check digit."""
    right = id18.str.slice(17, 1)
    wrong = right.replace_strict(
        list(ids.CHECK_CHARS),
        list(ids.CHECK_CHARS[1:] + ids.CHECK_CHARS[0]),
        return_dtype=pl.String,
    )
    return pl.concat_str([id18.str.slice(0, 17), wrong])


# ------------------------------------------------------------------ the roster a year before

YEAR_BEFORE = 12  # months before the first period
# Background households formed since (not on the roster a year before): INCOME_DROP is not
# evaluated for them, and the run report counts them.
FORMED_SINCE_SHARE = 0.02
# A background household's income a year before: its income now × a factor in this range,
# so that none fell by 30 % (1 − 1/1.35 ≈ 26 %) and background households stay LOW_INCOME
# at most.
THEN_FACTOR = (0.85, 1.35)


def year_before_period(cal: Calendar) -> str:
    """The period of the roster snapshot 12 months before the first screened period."""
    month = cal.months[0] - YEAR_BEFORE
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


def _year_before_roster(
    cal: Calendar,
    persons: pl.DataFrame,
    households: pl.DataFrame,
    cases: list[Case],
    seed: int,
) -> pl.DataFrame:
    """The roster as it stood 12 months before the first period: the members of period 1
    (babies born since left out) in the households of period 1 but those formed since,
    with the incomes of then; planted cases as their `year_before` says. No invalid rows."""
    rng = _rng(seed, "year-before")
    attrs = _household_attrs(households, cases, 0)
    background = attrs["_case"].is_null().to_list()
    factor = [rng.uniform(*THEN_FACTOR) for _ in background]
    formed = [bg and rng.random() < FORMED_SINCE_SHARE for bg in background]
    attrs = attrs.with_columns(
        per_capita_income=pl.when(pl.col("_case").is_null())
        .then((pl.col("per_capita_income") * pl.Series(factor)).round(0).cast(pl.Int64))
        .otherwise(pl.col("per_capita_income")),
        _formed=pl.Series(formed),
    )
    hid_of = dict(
        households.filter(pl.col("_case").is_not_null()).select("_case", "household_id").iter_rows()
    )
    for case in cases:
        mine = pl.col("household_id") == hid_of[case.case]
        if case.year_before is None:
            attrs = attrs.with_columns(_formed=mine | pl.col("_formed"))
            continue
        for column, value in case.year_before.items():
            if value == "<next>":
                row = attrs.filter(mine).row(0, named=True)
                value = _next_village(row["township"], row["village"], households)
            attrs = attrs.with_columns(
                pl.when(mine).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)
            )
    keep = attrs.filter(~pl.col("_formed")).select(
        "household_id", "township", "village", "household_type", "monitoring_status",
        "per_capita_income", "_tcode", "_vcode",
    )  # fmt: skip
    members = persons.filter(pl.col("household_id").is_not_null() & (pl.col("_from") == 0))
    roster = members.join(keep, on="household_id", how="inner", maintain_order="left")
    return roster.with_columns(
        _grp=pl.col("_pid"),
        _deliver=pl.lit(-1, pl.Int32),
        _id_form=pl.lit(None, pl.String),
        _check=pl.lit(None, pl.String),
        _column=pl.lit(None, pl.String),
        _override=pl.lit(None, pl.String),
    ).sort(["_tcode", "_vcode", "household_id", "_rank", "_pid"])


def _income_then(county: County, i: int) -> pl.DataFrame:
    """Per household, the per-capita income on the roster snapshot in force 12 months
    before period i (its head's: the first row), as `_income_then`."""
    j = i - YEAR_BEFORE
    then = county.rosters[j] if j >= 0 else county.year_before
    if then is None:
        return pl.DataFrame(schema={"household_id": pl.String, "_income_then": pl.Int64})
    return (
        then.filter(pl.col("_check").is_null())
        .group_by("household_id", maintain_order=True)
        .agg(pl.col("per_capita_income").first().alias("_income_then"))
    )


def _income_drop() -> pl.Expr:
    """INCOME_DROP in cents: now ≤ 7/10 of then, then above 0, now under twice the line."""
    now, then = pl.col("per_capita_income"), pl.col("_income_then")
    kept, whole = INCOME_DROP_KEPT
    return (then > 0) & (now * whole <= then * kept) & (now < INCOME_DROP_CEILING)


def write_year_before(county: County, out: Path) -> None:
    """The roster of a year before, in `<out>/<that period>/`, written as period 1's."""
    if county.year_before is None:
        return
    period = year_before_period(county.cal)
    style = county.style("roster", 0)
    assert style is not None
    folder = out / period
    folder.mkdir(parents=True, exist_ok=True)
    rows = county.year_before
    table = _render(rows, "roster", style, 0, _rng(county.seed, f"forms/{period}/roster"))
    path = folder / style.file_name(period)
    if style.fmt == "csv":
        _write_csv(path, table, style)
    elif style.fmt == "xlsx":
        title = contract.load()["roster"].title
        _write_xlsx(path, table, title, style, _household_runs(rows), period)
    else:
        _write_parquet(path, table)


def year_before_manifest(county: County) -> dict[str, Any] | None:
    """The roster of a year before: its period, file, rows and population. Ingest it (screening
    ingest --period P) before screening the periods: INCOME_DROP compares with it, and the
    expected lists count on it."""
    if county.year_before is None:
        return None
    period = year_before_period(county.cal)
    style = county.style("roster", 0)
    assert style is not None
    rows = county.year_before
    return {
        "period": period,
        "files": {"roster": style.file_name(period)},
        "rows": {"roster": rows.height},
        "population": {"households": rows["household_id"].n_unique(), "persons": rows.height},
    }


# ------------------------------------------------------------------ 防贫保 under Liling's schedule

# Liling's 防贫综合保险 (parameters/examples/liling.yaml), stated again on its own: per kind,
# the warning line, the bands (from, to or None, share as a fraction) and the cap, in cents.
LILING_FILE = "parameters/examples/liling.yaml"
_TIERS = (
    (2_000_000, 5_000_000, Fraction(35, 100)),
    (5_000_000, 10_000_000, Fraction(55, 100)),
    (10_000_000, 15_000_000, Fraction(75, 100)),
)
LILING: dict[str, tuple[int, tuple[tuple[int, int | None, Fraction], ...], int | None]] = {
    "illness": (2_000_000, _TIERS, 15_000_000),
    "accident": (2_000_000, _TIERS, 15_000_000),
    "schooling": (
        800_000,
        (
            (800_000, 1_100_000, Fraction(1)),
            (1_100_000, 1_300_000, Fraction(8, 10)),
            (1_300_000, None, Fraction(6, 10)),
        ),
        None,
    ),
}


def liling_payout(kind: str, base: int) -> int:
    """What Liling's schedule pays on `base` (cents), rounded half up to the cent."""
    line, bands, cap = LILING[kind]
    if base < line:
        return 0
    total = sum(
        (max(0, min(base, high if high is not None else base) - low) * share
         for low, high, share in bands),
        Fraction(0),
    )  # fmt: skip
    if cap is not None:
        total = min(total, Fraction(cap))
    return math.floor(total + Fraction(1, 2))


def relief_oracle(county: County) -> dict[str, int]:
    """Per household listed in the last period, its estimate under Liling's schedule when
    above 0: illness and accident per person (out-of-pocket; direct loss of records with
    no compensation), schooling per household (the net education cost)."""
    i = county.cal.n - 1
    listed = {r["household_id"] for r in county.expected[county.cal.periods[i]]}
    roster = county.rosters[i].filter(pl.col("_check").is_null())
    people = roster.select("id_number", pl.col("household_id").alias("_hh"))
    totals: dict[str, int] = {}

    def add(frame: pl.DataFrame, kind: str, amount: pl.Expr, per_person: bool) -> None:
        by = ["_hh", "id_number"] if per_person else ["_hh"]
        for hh, base in (
            frame.group_by(by).agg(amount.sum().alias("_base")).select("_hh", "_base").rows()
        ):
            if hh in listed:
                totals[hh] = totals.get(hh, 0) + liling_payout(kind, base)

    medical = _asof(county, "medical", i, people)
    add(medical, "illness", pl.col("out_of_pocket").fill_null(0), True)
    traffic = _asof(county, "traffic", i, people)
    unpaid = pl.when(pl.col("compensation").fill_null(0) == 0).then(pl.col("direct_loss"))
    add(traffic, "accident", unpaid.fill_null(0), True)
    add(_asof(county, "education", i, people), "schooling", _net_education(), False)
    return {hh: cents for hh, cents in sorted(totals.items()) if cents > 0}


def relief_manifest(county: County) -> dict[str, Any]:
    """The estimates of the last period under Liling's schedule: screen that period with
    `parameters` (--params) and every listed household carries its amount here, or 0.00."""
    return {
        "parameters": LILING_FILE,
        "period": county.cal.periods[-1],
        "households": {hh: _yuan(cents) for hh, cents in county.relief.items()},
    }


# ------------------------------------------------------------------ background events


@dataclass
class _Context:
    cal: Calendar
    persons: pl.DataFrame  # every person with household columns of period 0
    background: pl.DataFrame  # background roster people present from period 0
    towns: list[Township]
    next_grp: int = 0

    def group(self) -> int:
        """A fresh key group: rows sharing one get the same generated natural key."""
        self.next_grp += 1
        return self.next_grp - 1


def _span_day(ctx: _Context, rng: random.Random) -> dt.date:
    cal = ctx.cal
    month = _randint(rng, cal.first_month, cal.months[-1])
    return _month_start(month) + dt.timedelta(days=_randint(rng, 0, 27))


def _age_weights(people: pl.DataFrame, table: Sequence[tuple[int, float]]) -> list[float]:
    """Weight by age band: `table` is (upper age inclusive, weight), ascending."""
    weight: pl.Expr = pl.lit(table[-1][1])
    for top, w in reversed(table):
        weight = pl.when(pl.col("_age") <= top).then(pl.lit(w)).otherwise(weight)
    return people.select(weight.alias("w"))["w"].to_list()


def _medical_background(
    ctx: _Context, rng: random.Random, people: pl.DataFrame, rate: float
) -> pl.DataFrame:
    """Hospital settlements, more often for the old; poor households get medical aid."""
    months = ctx.cal.months[-1] - ctx.cal.first_month + 1
    count = max(3, round(rate * people.height * months)) if people.height else 0
    weights = _age_weights(people, ((44, 0.6), (64, 1.3), (200, 2.6)))
    picks = rng.choices(range(people.height), weights, k=count) if count else []
    span = (_month_end(ctx.cal.months[-1]) - _month_start(ctx.cal.first_month)).days
    draws = pl.DataFrame(
        {
            "_day": [_randint(rng, 0, span) for _ in range(count)],
            "_cost": [math.exp(rng.gauss(math.log(5000), 0.8)) for _ in range(count)],
            "_fund": [0.5 + 0.2 * rng.random() for _ in range(count)],
            "_aid": [0.1 + 0.2 * rng.random() for _ in range(count)],
            "_stay": [_randint(rng, 2, 15) for _ in range(count)],
            "_lag": [_randint(rng, 0, 2) for _ in range(count)],
            "hospital": [_choice(rng, HOSPITALS) for _ in range(count)],
        },
        schema_overrides={
            "_day": pl.Int64,
            "_cost": pl.Float64,
            "_fund": pl.Float64,
            "_aid": pl.Float64,
            "_stay": pl.Int64,
            "_lag": pl.Int64,
            "hospital": pl.String,
        },
    )
    rows = pl.concat([people[picks].select("_pid", "_poor"), draws], how="horizontal")
    total = (pl.col("_cost") * 100).round().cast(pl.Int64).clip(30_000, 30_000_000)
    when = pl.lit(_month_start(ctx.cal.first_month)) + pl.duration(days=pl.col("_day"))
    discharge = pl.col("settlement_date") - pl.duration(days=pl.col("_lag"))
    # The fund pays its share; critical-illness insurance 60 % of what the patient would still
    # owe above 15 000 yuan; medical aid part of the rest for poor households.
    remaining = pl.col("total_cost") - pl.col("fund_paid")
    after_critical = remaining - pl.col("critical_illness_paid").fill_null(0)
    rows = (
        rows.with_columns(total_cost=total, settlement_date=when)
        .with_columns(
            fund_paid=(pl.col("total_cost") * pl.col("_fund")).round().cast(pl.Int64),
            discharge_date=discharge,
        )
        .with_columns(
            critical_illness_paid=pl.when(remaining > 1_500_000).then(
                ((remaining - 1_500_000) * 0.6).round().cast(pl.Int64)
            ),
            admission_date=pl.col("discharge_date") - pl.duration(days=pl.col("_stay")),
        )
        .with_columns(
            medical_aid_paid=pl.when(pl.col("_poor"))
            .then((after_critical * pl.col("_aid")).round().cast(pl.Int64))
            .otherwise(0)
        )
    )
    return rows.with_columns(out_of_pocket=after_critical - pl.col("medical_aid_paid")).drop(
        "_poor", "_day", "_cost", "_fund", "_aid", "_stay", "_lag"
    )


def _traffic_background(
    ctx: _Context,
    rng: random.Random,
    people: pl.DataFrame,
    outsiders: pl.DataFrame,
    per_month: int,
) -> list[dict[str, Any]]:
    """Accidents with 无/轻伤 casualties only; one in five has a second casualty."""
    adults = people.filter(pl.col("_age").is_between(16, 80))
    pids = adults["_pid"].to_list()
    out_pids = outsiders["_pid"].to_list()
    if not pids:
        return []
    count = per_month * (ctx.cal.months[-1] - ctx.cal.first_month + 1)
    weights = _age_weights(adults, ((59, 1.0), (200, 0.5)))
    rows = []
    for first in rng.choices(pids, weights, k=count):
        when = _span_day(ctx, rng)
        grp = ctx.group()
        casualties = [first]
        if rng.random() < 0.2:
            casualties.append(_choice(rng, out_pids) if rng.random() < 0.5 else _choice(rng, pids))
        for pid in dict.fromkeys(casualties):
            direct = round(math.exp(rng.gauss(math.log(6000), 0.7))) * 100
            rows.append(
                {
                    "_pid": pid,
                    "_grp": grp,
                    "accident_date": when,
                    "injury": "轻伤" if rng.random() < 0.7 else "无",
                    "direct_loss": direct,
                    "compensation": round(direct * rng.uniform(0.3, 1.0) / 100) * 100,
                }
            )
    return rows


def _civil_background(
    ctx: _Context, rng: random.Random, people: pl.DataFrame
) -> list[dict[str, Any]]:
    """低保 and 特困供养 payments with yearly reviews, some exits, 低收入家庭 entries;
    their 新增 events lie before any window."""
    cal = ctx.cal
    heads = people.filter(pl.col("relation") == "户主")
    rows: list[dict[str, Any]] = []
    months = range(cal.first_month, cal.months[-1] + 1)
    for pid, kind, size, age in heads.select(
        "_pid", "household_type", "_size0", "_age"
    ).iter_rows():
        roll = rng.random()
        dibao_share = {"脱贫户": 0.10, "监测户": 0.20, "一般农户": 0.02}[kind]
        if size == 1 and age >= 65 and roll < 0.06:
            rows += _payments(rng, cal, pid, "特困供养", 70_000 + rng.randint(0, 20) * 1000, months)
        elif roll < dibao_share:
            rows += _payments(
                rng, cal, pid, "低保", size * (30_000 + rng.randint(0, 15) * 1000), months
            )
        elif roll < dibao_share + 0.02:
            when = _span_day(ctx, rng)
            rows.append({"_pid": pid, **_civil_fields(when, "低收入家庭", "新增", 0)})
    return rows


def _payments(
    rng: random.Random, cal: Calendar, pid: int, kind: str, amount: int, months: range
) -> list[dict[str, Any]]:
    start = _month_start(cal.first_month) - dt.timedelta(days=rng.randint(30, 1200))
    rows = [{"_pid": pid, **_civil_fields(start, kind, "新增", amount)}]
    exit_month = rng.choice(list(months)) if rng.random() < 0.05 else None
    for m in months:
        if exit_month is not None and m >= exit_month:
            rows.append(
                {
                    "_pid": pid,
                    **_civil_fields(_month_start(m) + dt.timedelta(days=19), kind, "退出", 0),
                }
            )
            break
        rows.append(
            {
                "_pid": pid,
                **_civil_fields(_month_start(m) + dt.timedelta(days=9), kind, "发放", amount),
            }
        )
        if m % 12 == 0:  # January review
            rows.append(
                {
                    "_pid": pid,
                    **_civil_fields(_month_start(m) + dt.timedelta(days=14), kind, "续保", amount),
                }
            )
    return rows


def _disability_background(
    ctx: _Context, rng: random.Random, people: pl.DataFrame
) -> list[dict[str, Any]]:
    """Certificates issued over the years; in the screened span only grades 3-4."""
    cal = ctx.cal
    span_start = _month_start(cal.first_month)
    last = cal.end(cal.n - 1)
    rows = []
    for pid, age, birth in people.select("_pid", "_age", "_birth").iter_rows():
        if age < 4 or rng.random() > (0.015 if age < 60 else 0.05):
            continue
        earliest = max(dt.date(2008, 1, 1), _shift_years(birth, 3))
        if earliest > last:
            continue
        issued = earliest + dt.timedelta(days=_randint(rng, 0, (last - earliest).days))
        grade = rng.choices((1, 2, 3, 4), (10, 20, 30, 40))[0]
        if issued >= span_start and grade <= 2:
            grade += 2
        kind = rng.choices(DISABILITY_TYPES, DISABILITY_TYPE_WEIGHTS)[0]
        rows.append({"_pid": pid, **_disability_fields(issued, grade, kind)})
    return rows


_SEMESTER_FEES = {  # yuan per semester: tuition, boarding, textbooks, aid if poor, aid if not
    "学前": (1500, 0, 100, 500, 0),
    "小学": (0, 250, 0, 500, 0),
    "初中": (0, 300, 0, 625, 0),
    "高中": (900, 400, 350, 1000, 0),
    "中职": (0, 400, 300, 1000, 1000),
    "高职": (2500, 600, 400, 1650, 0),
    "本科": (2800, 600, 500, 2000, 0),
}


def _education_background(ctx: _Context, rng: random.Random, people: pl.DataFrame) -> pl.DataFrame:
    """A fee record in March and September, a status record in every screened month."""
    cal = ctx.cal
    students = people.filter(pl.col("_age").is_between(3, 21))
    enrol = [
        rng.random() < (0.7 if a <= 5 else 1.0 if a <= 14 else 0.9 if a <= 17 else 0.45)
        for a in students["_age"].to_list()
    ]
    students = students.filter(pl.Series(enrol)).select(
        "_pid", "_birth", "_poor", "township", "_age"
    )
    n = students.height
    students = students.with_columns(
        _vocational=pl.Series([rng.random() < 0.3 for _ in range(n)], dtype=pl.Boolean),
        _college=pl.Series([rng.random() < 0.5 for _ in range(n)], dtype=pl.Boolean),
        _boarding=pl.Series([rng.random() < 0.3 for _ in range(n)], dtype=pl.Boolean),
        _drops=pl.Series([rng.random() < 0.04 for _ in range(n)], dtype=pl.Boolean),
    )
    fee_months = [m for m in range(cal.first_month, cal.months[-1] + 1) if m % 12 in (2, 8)]
    months = sorted(set(fee_months) | set(cal.months))
    grid = pl.DataFrame({"_month": months, "_fee": [m in fee_months for m in months]})
    rows = students.join(grid, how="cross", maintain_order="left")
    m = rows.height
    month = pl.col("_month")
    rows = rows.with_columns(
        _day=pl.Series([_randint(rng, 1, 28) for _ in range(m)]),
        _jitter=pl.Series([0.85 + 0.3 * rng.random() for _ in range(m)]),
        _roll=pl.Series([rng.random() for _ in range(m)]),
    ).with_columns(record_date=pl.date(month // 12, month % 12 + 1, pl.col("_day")))
    return _education_columns(rows, cal)


def _education_columns(rows: pl.DataFrame, cal: Calendar) -> pl.DataFrame:
    age = _age_expr(pl.col("_birth"), pl.col("record_date"))
    rows = rows.with_columns(_age_r=age).filter(pl.col("_age_r").is_between(3, 22))
    stage = (
        pl.when(pl.col("_age_r") <= 5)
        .then(pl.lit("学前"))
        .when(pl.col("_age_r") <= 11)
        .then(pl.lit("小学"))
        .when(pl.col("_age_r") <= 14)
        .then(pl.lit("初中"))
        .when(pl.col("_age_r") <= 17)
        .then(pl.when(pl.col("_vocational")).then(pl.lit("中职")).otherwise(pl.lit("高中")))
        .otherwise(pl.when(pl.col("_college")).then(pl.lit("本科")).otherwise(pl.lit("高职")))
    )
    rows = rows.with_columns(stage=stage)
    fee = {
        k: [v[j] for v in _SEMESTER_FEES.values()] for j, k in enumerate(("t", "a", "b", "p", "q"))
    }
    stages = list(_SEMESTER_FEES)

    def part(kind: str) -> pl.Expr:
        return pl.col("stage").replace_strict(stages, fee[kind], return_dtype=pl.Int64)

    tertiary = pl.col("stage").is_in(["高职", "本科"])
    boarding = pl.col("_boarding") | tertiary | pl.col("stage").is_in(["高中", "中职"])
    scale = pl.when(pl.col("_fee")).then(pl.col("_jitter")).otherwise(0.0)

    def money(base: pl.Expr) -> pl.Expr:
        return ((base.cast(pl.Float64) * scale / 10).round() * 1000).cast(pl.Int64)

    aid = pl.when(pl.col("_poor")).then(part("p")).otherwise(part("q"))
    aid = pl.when(pl.col("stage").is_in(["小学", "初中"]) & ~boarding).then(0).otherwise(aid)
    dropout_after = _month_start(cal.months[0] - 6)
    status = (
        pl.when(
            pl.col("_drops") & (pl.col("_age") >= 16) & (pl.col("record_date") >= dropout_after)
        )
        .then(pl.lit("辍学"))
        .when(pl.col("_roll") < 0.005)
        .then(pl.lit("休学"))
        .when(
            (pl.col("record_date").dt.month() == 7)
            & pl.col("stage").is_in(["高中", "中职"])
            & (pl.col("_age_r") == 17)
            & (pl.col("_roll") < 0.3)
        )
        .then(pl.lit("毕业"))
        .otherwise(pl.lit("在读"))
    )
    township_school = _TOWNSHIP_SCHOOLS
    county_school = pl.col("stage").replace_strict(
        list(SCHOOLS), [v[0] for v in SCHOOLS.values()], default=None, return_dtype=pl.String
    )
    school = (
        pl.when(pl.col("stage").is_in(list(township_school)))
        .then(
            pl.concat_str(
                [
                    pl.col("township"),
                    pl.col("stage").replace_strict(
                        list(township_school),
                        list(township_school.values()),
                        default="",
                        return_dtype=pl.String,
                    ),
                ]
            )
        )
        .otherwise(county_school)
    )
    return rows.select(
        "_pid",
        "record_date",
        school.alias("school"),
        "stage",
        status.alias("status"),
        money(part("t")).alias("tuition"),
        money(pl.when(boarding).then(part("a")).otherwise(0)).alias("accommodation"),
        money(part("b")).alias("textbook"),
        money(aid).alias("aid"),
    )


# ------------------------------------------------------------------ budgets, deliveries


def _net_education() -> pl.Expr:
    gross = pl.sum_horizontal(
        pl.col("tuition").fill_null(0),
        pl.col("accommodation").fill_null(0),
        pl.col("textbook").fill_null(0),
    )
    return (gross - pl.col("aid").fill_null(0)).clip(lower_bound=0)


def _net_accident() -> pl.Expr:
    return (pl.col("direct_loss").fill_null(0) - pl.col("compensation").fill_null(0)).clip(
        lower_bound=0
    )


def _budget_factors(events: dict[str, pl.DataFrame], households: pl.DataFrame) -> pl.DataFrame:
    """Per background household, the factor each kind of spending is scaled by so that every
    sum stays under BUDGET_SHARE of its threshold and their total under that share of
    income. Totals over the whole generated span bound every 12-month window."""

    def total(source: str, value: pl.Expr, name: str) -> pl.DataFrame:
        return events[source].group_by("household_id").agg(value.sum().alias(name))

    medical = total("medical", pl.col("out_of_pocket"), "_m")
    education = total("education", _net_education(), "_e")
    accident = total("traffic", _net_accident(), "_a")
    frame = households.select("household_id", "household_type", "per_capita_income", "_size0")
    for part in (medical, education, accident):
        frame = frame.join(part, on="household_id", how="left", maintain_order="left")
    frame = frame.with_columns(pl.col("_m", "_e", "_a").fill_null(0).cast(pl.Float64))
    medical_cap = pl.col("household_type").replace_strict(
        list(MEDICAL_THRESHOLD), list(MEDICAL_THRESHOLD.values()), return_dtype=pl.Float64
    )

    def factor(sum_col: str, cap: pl.Expr) -> pl.Expr:
        return (
            pl.when(pl.col(sum_col) > 0)
            .then((cap * BUDGET_SHARE / pl.col(sum_col)).clip(upper_bound=1.0))
            .otherwise(1.0)
        )

    frame = frame.with_columns(
        _fm=factor("_m", medical_cap),
        _fe=factor("_e", pl.lit(float(EDUCATION_THRESHOLD))),
        _fa=factor("_a", pl.lit(float(ACCIDENT_THRESHOLD))),
    )
    rigid = (
        pl.col("_m") * pl.col("_fm") + pl.col("_e") * pl.col("_fe") + pl.col("_a") * pl.col("_fa")
    )
    income = (pl.col("per_capita_income") * pl.col("_size0")).cast(pl.Float64) * BUDGET_SHARE
    g = pl.when(rigid > 0).then((income / rigid).clip(upper_bound=1.0)).otherwise(1.0)
    return frame.with_columns(_g=g).select(
        "household_id",
        (pl.col("_fm") * pl.col("_g")).alias("_fm"),
        (pl.col("_fe") * pl.col("_g")).alias("_fe"),
        (pl.col("_fa") * pl.col("_g")).alias("_fa"),
    )


def _scaled(value: pl.Expr, factor: str) -> pl.Expr:
    return (value.cast(pl.Float64) * pl.col(factor)).floor().cast(pl.Int64)


def _apply_budget(events: dict[str, pl.DataFrame], factors: pl.DataFrame) -> None:
    """Scale background spending down in place, moving the difference to aid or
    compensation so the other figures on each record stay consistent. Records of people
    outside the roster belong to no household and keep their amounts."""

    def with_factors(source: str) -> pl.DataFrame:
        joined = events[source].join(factors, on="household_id", how="left", maintain_order="left")
        return joined.with_columns(pl.col("_fm", "_fe", "_fa").fill_null(1.0))

    med = with_factors("medical")
    new_oop = _scaled(pl.col("out_of_pocket"), "_fm")
    events["medical"] = med.with_columns(
        medical_aid_paid=pl.col("medical_aid_paid") + pl.col("out_of_pocket") - new_oop,
        out_of_pocket=new_oop,
    ).drop("_fm", "_fe", "_fa")
    edu = with_factors("education")
    gross = pl.col("tuition") + pl.col("accommodation") + pl.col("textbook")
    events["education"] = edu.with_columns(
        aid=pl.when(_net_education() > 0)
        .then(gross - _scaled(_net_education(), "_fe"))
        .otherwise(pl.col("aid"))
    ).drop("_fm", "_fe", "_fa")
    acc = with_factors("traffic")
    events["traffic"] = acc.with_columns(
        compensation=pl.when(_net_accident() > 0)
        .then(pl.col("direct_loss") - _scaled(_net_accident(), "_fa"))
        .otherwise(pl.col("compensation"))
    ).drop("_fm", "_fe", "_fa")


def _late_and_shift(
    frame: pl.DataFrame, source: str, cal: Calendar, rng: random.Random, late_share: float
) -> pl.DataFrame:
    """Background records: a few arrive one period late; then every record moves on to the
    next period whose file can carry rows (missing or header-only months deliver nothing)."""
    late = pl.Series([rng.random() < late_share for _ in range(frame.height)], dtype=pl.Boolean)
    deliver = pl.col("_deliver")
    late_ok = late & pl.col("_case").is_null() & (deliver + 1 < cal.n)
    shifted = [_shift(source, d, cal.n) for d in range(cal.n + 1)]
    return (
        frame.with_columns(_deliver=pl.when(late_ok).then(deliver + 1).otherwise(deliver))
        .with_columns(
            _deliver=pl.col("_deliver").replace_strict(
                list(range(cal.n + 1)), shifted, return_dtype=pl.Int32
            )
        )
        .filter(pl.col("_deliver") < cal.n)
    )


def _shift(source: str, d: int, n: int) -> int:
    while d < n and not _accepts_rows(source, d):
        d += 1
    return d


def _resends(frame: pl.DataFrame, source: str, cal: Calendar, rng: random.Random) -> pl.DataFrame:
    """About 1 % of background records are sent again next period with a corrected amount
    (lower spending, so budgets still hold) under the same natural key. Certificates are
    not re-sent: a re-issue would date them into the window."""
    if source == "disability":
        return frame
    eligible = frame.filter(pl.col("_case").is_null() & (pl.col("_deliver") + 1 < cal.n))
    if source == "education":
        eligible = eligible.filter(_net_education() > 0)
    if source == "civil":
        eligible = eligible.filter(pl.col("event") == "发放")
    if eligible.height == 0:
        return frame
    picks = sorted(rng.sample(range(eligible.height), max(1, eligible.height // 100)))
    chosen = eligible[picks]
    d = [_shift(source, x + 1, cal.n) for x in chosen["_deliver"].to_list()]
    chosen = chosen.with_columns(_deliver=pl.Series(d, dtype=pl.Int32)).filter(
        pl.col("_deliver") < cal.n
    )
    corrected = chosen.with_columns(**_correction(source))
    return pl.concat([frame, corrected], how="diagonal_relaxed")


def _correction(source: str) -> dict[str, pl.Expr]:
    if source == "medical":
        new_oop = (pl.col("out_of_pocket") * 9 // 10).cast(pl.Int64)
        return {
            "medical_aid_paid": pl.col("medical_aid_paid") + pl.col("out_of_pocket") - new_oop,
            "out_of_pocket": new_oop,
        }
    if source == "education":
        return {"aid": pl.col("aid") + 10_000}
    if source == "traffic":
        return {
            "compensation": pl.min_horizontal(
                pl.col("direct_loss"), pl.col("compensation") + 50_000
            )
        }
    return {"amount": (pl.col("amount") - 5_000).clip(lower_bound=0)}


# ------------------------------------------------------------------ assembling events


def _planted_rows(
    cases: list[Case], persons: pl.DataFrame, ctx: _Context, source: str
) -> list[dict[str, Any]]:
    cal = ctx.cal
    pid_of = {
        (case, rank): pid
        for case, rank, pid in persons.filter(pl.col("_case").is_not_null())
        .select("_case", "_rank", "_pid")
        .iter_rows()
    }
    rows = []
    for case in cases:
        groups: dict[str | None, int] = {}
        for ev in case.events:
            if ev.source != source:
                continue
            grp = groups[ev.group] if ev.group in groups else ctx.group()
            if ev.group is not None:
                groups[ev.group] = grp
            when = ev.fields[_rule_date(source)]
            rows.append(
                {
                    **ev.fields,
                    "_pid": pid_of[(case.case, ev.member)],
                    "_grp": grp,
                    "_deliver": cal.delivery(when) if ev.deliver is None else ev.deliver,
                    "_case": case.case,
                    "_id_form": ev.id_form,
                }
            )
    return rows


def _background_rows(source: str, ctx: _Context, rng: random.Random) -> pl.DataFrame:
    bg, outsiders = ctx.background, ctx.persons.filter(pl.col("household_id").is_null())
    if source == "medical":
        frame = pl.concat(
            [
                _medical_background(ctx, rng, bg, 0.015),
                _medical_background(ctx, rng, outsiders, 0.015),
            ],
            how="diagonal_relaxed",
        )
    elif source == "education":
        frame = pl.concat(
            [_education_background(ctx, rng, bg), _education_background(ctx, rng, outsiders)],
            how="diagonal_relaxed",
        )
    elif source == "traffic":
        per_month = max(1, round(bg.height * 0.0002))
        frame = _frame(source, _traffic_background(ctx, rng, bg, outsiders, per_month))
    elif source == "civil":
        rows = _civil_background(ctx, rng, bg)
        rows += [
            {"_pid": pid, **_civil_fields(_span_day(ctx, rng), "临时救助", "发放", 150_000)}
            for pid in rng.sample(outsiders["_pid"].to_list(), min(4, outsiders.height))
        ]
        frame = _frame(source, rows)
    else:
        rows = _disability_background(ctx, rng, bg)
        rows += _disability_background(ctx, rng, outsiders)
        frame = _frame(source, rows)
    return _complete(source, frame, ctx)


def _complete(source: str, frame: pl.DataFrame, ctx: _Context) -> pl.DataFrame:
    """Typed and meta columns for generated rows, a key group each (unless shared) and the
    period whose file first carries them (history before the first period goes there)."""
    frame = _conform(source, frame)
    date = pl.col(_rule_date(source))
    month = date.dt.year().cast(pl.Int32) * 12 + date.dt.month().cast(pl.Int32) - 1
    fresh = pl.int_range(pl.len(), dtype=pl.Int64) + ctx.next_grp
    ctx.next_grp += frame.height
    return frame.with_columns(
        _deliver=(month - ctx.cal.months[0]).clip(lower_bound=0).cast(pl.Int32),
        _grp=pl.coalesce(pl.col("_grp"), fresh),
    )


def _conform(source: str, frame: pl.DataFrame) -> pl.DataFrame:
    schema = {**_typed_schema(source), **_meta_schema()}
    missing = [
        pl.lit(None, dtype).alias(k) for k, dtype in schema.items() if k not in frame.columns
    ]
    frame = frame.with_columns(missing)
    return frame.select([pl.col(k).cast(dtype) for k, dtype in schema.items()])


def _events(
    ctx: _Context, cases: list[Case], households: pl.DataFrame, seed: int
) -> dict[str, pl.DataFrame]:
    cal = ctx.cal
    link = ctx.persons.select("_pid", "household_id")
    events: dict[str, pl.DataFrame] = {}
    for source in EVENT_SOURCES:
        bg = _background_rows(source, ctx, _rng(seed, f"events/{source}"))
        events[source] = bg.join(link, on="_pid", how="left", maintain_order="left")
    _apply_budget(events, _budget_factors(events, households))
    for source in EVENT_SOURCES:
        rng = _rng(seed, f"deliveries/{source}")
        planted = _conform(source, _frame(source, _planted_rows(cases, ctx.persons, ctx, source)))
        frame = pl.concat([events[source].drop("household_id"), planted], how="diagonal_relaxed")
        frame = _late_and_shift(frame, source, cal, rng, 0.03)
        frame = _resends(frame, source, cal, rng)
        events[source] = frame
    return events


# ------------------------------------------------------------------ invalid rows


# (check, column, how) per source: every file that can carry the value gets one of each.
INVALID_KINDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "medical": (
        ("invalid_id", "id_number", "bad_check"),
        ("invalid_date", "settlement_date", "feb30"),
        ("min", "fund_paid", "negative"),
        ("out_of_pocket_not_above_total", "out_of_pocket", "oop_over_total"),
        ("discharge_not_before_admission", "discharge_date", "discharge_first"),
        ("invalid_money", "fund_paid", "pending"),
        ("duplicate_key", "settlement_id", "duplicate"),
    ),
    "education": (
        ("invalid_id", "id_number", "bad_birth"),
        ("min", "tuition", "negative"),
        ("invalid_value", "stage", "bad_enum"),
        ("invalid_date", "record_date", "feb30"),
    ),
    "traffic": (
        ("invalid_id", "id_number", "bad_check"),
        ("invalid_date", "accident_date", "month13"),
        ("min", "compensation", "negative"),
        ("invalid_value", "injury", "bad_enum"),
    ),
    "civil": (
        ("invalid_id", "id_number", "bad_check"),
        ("min", "amount", "negative"),
        ("invalid_date", "event_date", "feb30"),
        ("required", "event_date", "empty"),
    ),
    "disability": (
        ("invalid_value", "grade", "bad_grade"),
        ("invalid_date", "issue_date", "feb30"),
        ("invalid_id", "id_number", "bad_check"),
    ),
}
_TEXT_ONLY = frozenset({"feb30", "month13", "pending", "bad_grade"})


# The share of a file's rows that its invalid rows may take: under the completeness gate's
# default hold level (gates.max_quarantined_share, 20 %), so that the sample county is not
# held; a small delivery gets fewer kinds, taken in turn so that each period shows others.
INVALID_SHARE = 0.15


def _invalid_kinds(
    source: str, kinds: tuple[tuple[str, str, str], ...], i: int, valid_rows: int
) -> list[tuple[str, str, str]]:
    """The invalid kinds delivery `i` of `source` carries, within INVALID_SHARE."""
    style = style_for(source, i)
    usable = [k for k in kinds if not (k[2] in _TEXT_ONLY and style and style.fmt == "parquet")]
    chosen: list[tuple[str, str, str]] = []
    rows = 0
    for j in range(len(usable)):
        kind = usable[(i + j) % len(usable)]
        extra = 2 if kind[2] == "duplicate" else 1
        if rows + extra > INVALID_SHARE * (valid_rows + rows + extra):
            continue
        chosen.append(kind)
        rows += extra
    return [k for k in usable if k in chosen]  # in the table's order


def _invalid_rows(ctx: _Context, events: dict[str, pl.DataFrame], seed: int) -> None:
    """Add a few rows that validation must reject, for background people who have no other
    record in that source (so no natural key collides and no planted case is touched)."""
    cal = ctx.cal
    for source, kinds in INVALID_KINDS.items():
        rng = _rng(seed, f"invalid/{source}")
        used = set(events[source]["_pid"].to_list())
        pool = sorted(set(ctx.background.filter(pl.col("_age") >= 18)["_pid"].to_list()) - used)
        delivered = dict(events[source].group_by("_deliver").len().iter_rows())
        rows: list[dict[str, Any]] = []
        for i in range(cal.n):
            style = style_for(source, i)
            if style is None or style.header_only:
                continue
            for check, column, how in _invalid_kinds(source, kinds, i, delivered.get(i, 0)):
                pid = pool.pop(rng.randrange(len(pool)))
                rows += _invalid_row(
                    source,
                    check,
                    column,
                    how,
                    pid,
                    cal.day(i, rng.randint(2, 27)),
                    i,
                    ctx.group(),
                    rng,
                )
        extra = _conform(source, _frame(source, rows))
        events[source] = pl.concat([events[source], extra], how="diagonal_relaxed")


def _invalid_row(
    source: str,
    check: str,
    column: str,
    how: str,
    pid: int,
    when: dt.date,
    i: int,
    grp: int,
    rng: random.Random,
) -> list[dict[str, Any]]:
    base = {
        "medical": lambda: _medical_fields(when, rng.randint(100, 600) * 100, HOSPITALS[1]),
        "education": lambda: _education_fields(when, "高中", "在读", (90_000, 40_000, 35_000, 0)),
        "traffic": lambda: _traffic_fields(when, "轻伤", 300_000, 250_000),
        "civil": lambda: _civil_fields(when, "低收入家庭", "续保", 20_000),
        "disability": lambda: _disability_fields(when, 4, "听力"),
    }[source]()
    override = None
    if how == "negative":
        base[column] = -rng.randint(50, 500) * 100
    elif how == "oop_over_total":
        base["out_of_pocket"] = base["total_cost"] + rng.randint(10, 200) * 100
    elif how == "discharge_first":
        base["discharge_date"] = base["admission_date"] - dt.timedelta(days=3)
    elif how == "feb30":
        override = f"{when.year}-02-30"
    elif how == "month13":
        override = f"{when.year}-13-{when.day:02d}"
    elif how == "pending":
        override = "待核"
    elif how == "bad_enum":
        base[column] = {"stage": "大专班", "injury": "骨折"}[column]
    elif how == "bad_grade":
        override = "五级"
    elif how == "empty":
        base[column] = None
    meta = {
        "_pid": pid,
        "_grp": grp,
        "_deliver": i,
        "_check": check,
        "_column": column,
        "_override": override,
        # Rejected rows are written plainly (a 15-digit form would repair a wrong check
        # digit); an invalid ID says here how `_identify` breaks it.
        "_id_form": how if check == "invalid_id" else "plain",
    }
    if how == "duplicate":
        # Two settlements under one number that differ (a copy identical in every column
        # would be the same record, counted once): both are quarantined.
        return [{**base, **meta}, {**base, **meta, "hospital": HOSPITALS[2]}]
    return [{**base, **meta}]


# ------------------------------------------------------------------ identities on records


def _identify(
    events: dict[str, pl.DataFrame], persons: pl.DataFrame, chunks: _Chunks | None = None
) -> None:
    """Put each person's ID and name on their records, corrupt the IDs meant to be invalid,
    and number the natural keys (shared by re-sent rows and co-casualties)."""
    who = persons.select("_pid", "id_number", "name", "_birth")
    for source, frame in events.items():
        frame = frame.drop("id_number", "name").join(
            who, on="_pid", how="left", maintain_order="left"
        )
        how = pl.col("_id_form")
        frame = frame.with_columns(
            id_number=pl.when(how == "bad_birth")
            .then(_impossible_birth(pl.col("id_number")))
            .when(how == "bad_check")
            .then(_corrupt_check(pl.col("id_number")))
            .otherwise(pl.col("id_number")),
            _id_form=pl.when(how.is_in(["bad_birth", "bad_check"]))
            .then(pl.lit("plain"))
            .otherwise(how),
        )
        events[source] = _with_keys(source, frame, chunks).drop("_birth")


def _impossible_birth(id18: pl.Expr) -> pl.Expr:
    """30 February with a correct check digit: only the birth date gives it away."""
    first17 = pl.concat_str([id18.str.slice(0, 10), pl.lit("0230"), id18.str.slice(14, 3)])
    return pl.concat_str([first17, _check_char(first17)])


_KEY_PREFIX = {
    "medical": ("settlement_id", "JS", "%Y%m%d", 6),
    "education": ("record_id", "XJ", "%Y%m", 7),
    "traffic": ("accident_id", "SG", "%Y%m%d", 5),
}
_GRADE_DIGIT = {t: str(i + 1) for i, t in enumerate(DISABILITY_TYPES)}


def _with_keys(source: str, frame: pl.DataFrame, chunks: _Chunks | None = None) -> pl.DataFrame:
    if source == "disability":
        category = pl.col("disability_type").replace_strict(
            list(_GRADE_DIGIT), list(_GRADE_DIGIT.values()), default="4", return_dtype=pl.String
        )
        return frame.with_columns(
            certificate_no=pl.concat_str(
                [pl.col("id_number"), category, pl.col("grade").cast(pl.String)]
            )
        )
    if source not in _KEY_PREFIX:
        return frame
    column, prefix, fmt, width = _KEY_PREFIX[source]
    date = _rule_date(source)
    groups = frame.group_by("_grp").agg(pl.col(date).min().alias("_kd"))
    # A chunk of a large county numbers on from the chunks before it.
    first = 1 if chunks is None else chunks.keys_from(source, groups.height)
    keys = (
        groups.sort(["_kd", "_grp"], nulls_last=True)
        .with_columns(
            pl.concat_str(
                [
                    pl.lit(prefix),
                    pl.col("_kd").dt.strftime(fmt),
                    (pl.int_range(pl.len()) + first).cast(pl.String).str.zfill(width),
                ]
            ).alias(column)
        )
        .drop("_kd")
    )
    return frame.drop(column).join(keys, on="_grp", how="left", maintain_order="left")


# ------------------------------------------------------------------ mistyped ID numbers

# Records of known roster persons whose ID number a department mistyped, one kind each in
# turn, and records of people truly absent from the roster (a valid number of this very
# county, of nobody on it): what screening.linkage must find, and must not. Planted only
# when asked (`generate(..., typos=N)`, `--typos N`): the committed sample stays as it is.
TYPO_KINDS = ("digit", "swap", "no_check", "id15")
ABSENT = "absent"
TYPO_SOURCES = ("medical", "civil")
# The first mistyped record is a hospital stay large enough to list its household (MEDICAL
# for any household type) once a person confirms the link: the end-to-end case.
LISTING_OOP = 3_000_000


def mistyped(id18: str, kind: str, rng: random.Random) -> str:
    """`id18` as a department might have typed it: one digit changed, two adjacent digits
    swapped, the check digit dropped, or its 15-digit form converted to 18 digits with the
    wrong century (20 for 19) and the check digit computed over that."""
    if kind == "digit":
        i = rng.randrange(17)
        return id18[:i] + rng.choice([d for d in "0123456789" if d != id18[i]]) + id18[i + 1 :]
    if kind == "swap":
        spots = [i for i in range(16) if id18[i] != id18[i + 1]]
        i = rng.choice(spots)
        return id18[:i] + id18[i + 1] + id18[i] + id18[i + 2 :]
    if kind == "no_check":
        return id18[:17]
    first17 = id18[:6] + ("20" if id18[6:8] == "19" else "19") + id18[8:17]
    return first17 + ids.check_digit(first17)


def plant_typos(county: County, per_kind: int) -> None:
    """Add `per_kind` records of each TYPO_KINDS (known background persons, one record
    each) and `per_kind` records of absent people, alternately 医保 settlements and 民政
    events, to period 1's deliveries (dated in its month, so in every period's window).
    Rows whose number is no valid ID are marked for the quarantine (`_check`), the others
    count as unmatched; `_typo` names the kind. Nothing the rules see changes: no record
    carries a roster person's number."""
    rng = _rng(county.seed, "typos")
    roster = county.rosters[0].filter(
        pl.col("_check").is_null() & pl.col("_case").is_null() & pl.col("_pid").is_not_null()
    )
    taken = set(county.rosters[0]["id_number"].to_list())
    for frame in county.events.values():
        taken |= set(frame["id_number"].drop_nulls().to_list())
    people = rng.sample(sorted(roster["_pid"].to_list()), per_kind * len(TYPO_KINDS))
    who = {r["_pid"]: r for r in roster.select("_pid", "id_number", "name").iter_rows(named=True)}
    names = _People(county.cal, rng)
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in TYPO_SOURCES}
    plan = [(TYPO_KINDS[k % len(TYPO_KINDS)], pid) for k, pid in enumerate(people)]
    plan += [(ABSENT, None)] * per_kind
    for k, (kind, pid) in enumerate(plan):
        if pid is None:
            number, name = (
                _absent_number(rng, taken),
                names.surname() + names.given_name(rng.randint(0, 1), rng.randint(1950, 2005)),
            )
        else:
            number, name = mistyped(who[pid]["id_number"], kind, rng), who[pid]["name"]
        taken.add(number)
        when = county.cal.day(0, rng.randint(2, 27))
        # Each kind in both sources, in turn; the first record (the listing one) in 医保.
        source = TYPO_SOURCES[(k // len(TYPO_KINDS) + k) % len(TYPO_SOURCES)]
        fields = (
            _medical_fields(when, LISTING_OOP if k == 0 else rng.randint(3, 15) * 10_000)
            | {"settlement_id": f"JS{when:%Y%m%d}9{k:05d}"}
            if source == "medical"
            else _civil_fields(when, "低收入家庭", "续保", 20_000)
        )
        invalid = not ids.is_valid(number)
        rows[source].append(
            {
                **fields,
                "id_number": number,
                "name": name,
                "_pid": pid,
                "_deliver": 0,
                "_id_form": "plain",
                "_check": "invalid_id" if invalid else None,
                "_column": "id_number" if invalid else None,
                "_typo": kind,
            }
        )
    for source, planted in rows.items():
        frame = _conform(source, _frame(source, planted)).with_columns(
            _typo=pl.Series([r["_typo"] for r in planted], dtype=pl.String)
        )
        county.events[source] = pl.concat([county.events[source], frame], how="diagonal_relaxed")


def _absent_number(rng: random.Random, taken: set[str]) -> str:
    """A valid ID number of this county that nobody on the roster or in the records has."""
    while True:
        born = dt.date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28))
        first17 = f"{COUNTY}{born:%Y%m%d}{rng.randint(100, 999)}"
        number = first17 + ids.check_digit(first17)
        if number not in taken:
            return number


def typo_entries(county: County) -> list[dict[str, Any]]:
    """The manifest's `typos` (when any were planted): each planted record's file and row,
    its kind, the number delivered and, for a known person, the true number and household;
    and the department rows quarantined for a wrong check digit or an impossible birth date
    (INVALID_KINDS), kind `check` or `birth`, which are known persons' records too."""
    people = {
        r["_pid"]: r
        for r in county.rosters[0].select("_pid", "id_number", "household_id").iter_rows(named=True)
    }
    if not any("_typo" in frame.columns for frame in county.events.values()):
        return []
    entries = []
    for i, period in enumerate(county.cal.periods):
        for source in EVENT_SOURCES:
            style = county.style(source, i)
            data = county.delivery(source, i)
            if style is None:
                continue
            if "_typo" not in data.columns:
                data = data.with_columns(_typo=pl.lit(None, pl.String))
            invalid = (pl.col("_check") == "invalid_id") & pl.col("_pid").is_in(list(people))
            marked = data.with_row_index("_row").filter(pl.col("_typo").is_not_null() | invalid)
            key = contract.load()[source].natural_key
            for r in marked.iter_rows(named=True):
                person = people.get(r["_pid"]) or {}
                kind = r["_typo"] or (
                    "check" if r["id_number"][:17] == person["id_number"][:17] else "birth"
                )
                entries.append(
                    {
                        "period": period,
                        "source": source,
                        "file": style.file_name(period),
                        "row_number": r["_row"] + first_data_row(style),
                        "source_key": "|".join(str(r[k]) for k in key),
                        "kind": kind,
                        "delivered": r["id_number"],
                        "id_number": person.get("id_number"),
                        "household_id": person.get("household_id"),
                        "listing": source == "medical" and r["out_of_pocket"] == LISTING_OOP,
                    }
                )
    return entries


# ------------------------------------------------------------------ the oracle


def screen_oracle(county: County) -> None:
    """Apply the default rules period by period, fill `expected` and `planted`, and check
    that background households carry nothing but LOW_INCOME and planted ones their intent."""
    cal = county.cal
    previous: set[str] = set()
    results: list[pl.DataFrame] = []
    for i in range(cal.n):
        result = _screen_period(county, i, previous)
        results.append(result)
        listed = result.filter(pl.col("colour").is_not_null())
        previous = set(listed["household_id"].to_list())
        county.expected[cal.periods[i]] = [
            _expected_row(r) for r in listed.sort("household_id").iter_rows(named=True)
        ]
    _check_background(county, results)
    county.planted = _planted_report(county, results)


def _asof(county: County, source: str, i: int, people: pl.DataFrame) -> pl.DataFrame:
    cal = county.cal
    date = _rule_date(source)
    keys = list(contract.load()[source].natural_key)
    frame = (
        county.events[source]
        .filter(pl.col("_check").is_null() & (pl.col("_deliver") <= i))
        .sort("_deliver", maintain_order=True)
        .unique(subset=keys, keep="last", maintain_order=True)
        .filter(pl.col(date).is_between(cal.window_start(i), cal.end(i)))
    )
    return frame.join(people, on="id_number", how="inner")


def _screen_period(county: County, i: int, previous: set[str]) -> pl.DataFrame:
    cal = county.cal
    roster = county.rosters[i].filter(pl.col("_check").is_null())
    end = cal.end(i)
    people = roster.select(
        "id_number",
        pl.col("household_id").alias("_hh"),
        _age_expr(pl.col("_birth"), end).alias("_age_p"),
    )
    medical = (
        _asof(county, "medical", i, people)
        .group_by("_hh")
        .agg(pl.col("out_of_pocket").sum().alias("medical_oop"))
    )
    edu = _asof(county, "education", i, people)
    education = edu.group_by("_hh").agg(_net_education().sum().alias("education_cost"))
    dropout = (
        edu.sort(["record_date", "record_id"])
        .group_by("id_number", maintain_order=True)
        .last()
        .filter((pl.col("status") == "辍学") & pl.col("_age_p").is_between(*COMPULSORY_AGE))
        .select("_hh")
        .unique()
        .with_columns(_dropout=pl.lit(True))
    )
    acc = _asof(county, "traffic", i, people)
    accident = acc.group_by("_hh").agg(
        _net_accident().sum().alias("accident_loss"),
        (pl.col("injury").is_in(["重伤", "死亡"]) & pl.col("_age_p").is_between(*WORKING_AGE))
        .any()
        .alias("_severe"),
    )
    disability = (
        _asof(county, "disability", i, people)
        .filter(pl.col("grade").is_in(list(SEVERE_GRADES)))
        .select("_hh")
        .unique()
        .with_columns(_disabled=pl.lit(True))
    )
    civil = (
        _asof(county, "civil", i, people)
        .filter(
            (pl.col("assistance_type") == "临时救助")
            | (pl.col("assistance_type").is_in(["低保", "特困供养"]) & (pl.col("event") == "新增"))
        )
        .select("_hh")
        .unique()
        .with_columns(_assisted=pl.lit(True))
    )
    households = roster.group_by("household_id", maintain_order=True).agg(
        pl.col(
            "township",
            "village",
            "household_type",
            "monitoring_status",
            "per_capita_income",
            "_case",
        ).first(),
        pl.len().alias("household_size"),
    )
    for part in (medical, education, accident, dropout, disability, civil):
        households = households.join(
            part.rename({"_hh": "household_id"}), on="household_id", how="left"
        )
    households = households.join(_income_then(county, i), on="household_id", how="left")
    return _classify(
        households.with_columns(
            pl.col("medical_oop", "education_cost", "accident_loss").fill_null(0),
            pl.col("_severe", "_dropout", "_disabled", "_assisted").fill_null(False),
        ),
        previous,
    )


def _classify(h: pl.DataFrame, previous: set[str]) -> pl.DataFrame:
    threshold = pl.col("household_type").replace_strict(
        list(MEDICAL_THRESHOLD), list(MEDICAL_THRESHOLD.values()), return_dtype=pl.Int64
    )
    rigid = pl.col("medical_oop") + pl.col("education_cost") + pl.col("accident_loss")
    flags = {
        "ACCIDENT": (pl.col("accident_loss") > ACCIDENT_THRESHOLD) | pl.col("_severe"),
        "ASSISTANCE": pl.col("_assisted"),
        "DISABILITY": pl.col("_disabled"),
        "DROPOUT": pl.col("_dropout"),
        "EDUCATION": pl.col("education_cost") > EDUCATION_THRESHOLD,
        "LOW_INCOME": pl.col("per_capita_income") < MONITORING_LINE,
        "MEDICAL": pl.col("medical_oop") >= threshold,
        "SPENDING": rigid > pl.col("per_capita_income") * pl.col("household_size"),
        "INCOME_DROP": _income_drop(),
    }
    codes = pl.concat_list(
        [pl.when(flags[c]).then(pl.lit(c)) for c in RISK_CODES]
    ).list.drop_nulls()
    h = h.with_columns(risk_codes=codes, rigid_expenditure=rigid)
    n = pl.col("risk_codes").list.len()
    colour = (
        pl.when(n >= 2)
        .then(pl.lit("红"))
        .when((n == 1) & pl.col("risk_codes").list.contains("LOW_INCOME"))
        .then(pl.lit("黄"))
        .when(n == 1)
        .then(pl.lit("蓝"))
    )
    status = (
        pl.when(pl.col("monitoring_status") == "监测中")
        .then(pl.lit("已在监测"))
        .when(pl.col("household_id").is_in(sorted(previous)))
        .then(pl.lit("持续"))
        .otherwise(pl.lit("新增"))
    )
    return h.with_columns(colour=colour).with_columns(
        listing_status=pl.when(pl.col("colour").is_not_null()).then(status)
    )


def _yuan(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return sign + _money_text(abs(cents))


def _expected_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "household_id": r["household_id"],
        "township": r["township"],
        "village": r["village"],
        "household_type": r["household_type"],
        "household_size": r["household_size"],
        "per_capita_income": _yuan(r["per_capita_income"]),
        "colour": r["colour"],
        "risk_codes": list(r["risk_codes"]),
        "listing_status": r["listing_status"],
        "medical_oop": _yuan(r["medical_oop"]),
        "education_cost": _yuan(r["education_cost"]),
        "accident_loss": _yuan(r["accident_loss"]),
        "rigid_expenditure": _yuan(r["rigid_expenditure"]),
    }


def _check_background(county: County, results: list[pl.DataFrame]) -> None:
    for i, result in enumerate(results):
        wrong = result.filter(
            pl.col("_case").is_null()
            & (pl.col("risk_codes").list.set_difference(pl.lit(["LOW_INCOME"])).list.len() > 0)
        )
        if wrong.height:
            row = wrong.row(0, named=True)
            raise SampleError(
                f"background household {row['household_id']} carries {row['risk_codes']}"
                f" in {county.cal.periods[i]}"
            )


def _planted_report(county: County, results: list[pl.DataFrame]) -> list[dict[str, Any]]:
    cal = county.cal
    by_case = [
        {r["_case"]: r for r in res.filter(pl.col("_case").is_not_null()).iter_rows(named=True)}
        for res in results
    ]
    report = []
    for case in county.cases:
        periods: dict[str, Any] = {}
        for i, p in enumerate(cal.periods):
            r = by_case[i][case.case]
            codes = list(r["risk_codes"])
            _check_intent(case, i, codes, r["listing_status"])
            periods[p] = (
                {
                    "risk_codes": codes,
                    "colour": r["colour"],
                    "listing_status": r["listing_status"],
                    "village": r["village"],
                    "household_size": r["household_size"],
                }
                if r["colour"]
                else None
            )
        report.append(
            {
                "case": case.case,
                "household_id": by_case[0][case.case]["household_id"],
                "description": case.description,
                "periods": periods,
            }
        )
    return report


def _check_intent(case: Case, i: int, codes: list[str], status: str | None) -> None:
    if i in case.intent and set(codes) != case.intent[i]:
        raise SampleError(
            f"planted case {case.case} shows {codes} in period {i + 1}, "
            f"intended {sorted(case.intent[i])}"
        )
    wanted = case.status_intent.get(i)
    if wanted is not None and (status or "") != wanted:
        raise SampleError(
            f"planted case {case.case} is {status!r} in period {i + 1}, intended {wanted!r}"
        )


# ------------------------------------------------------------------ building the county


def build(households: int, periods: Sequence[str], seed: int, typos: int = 0) -> County:
    """The whole county as typed frames plus its expected lists (nothing is written);
    with `typos`, that many mistyped ID numbers of each kind (`plant_typos`)."""
    cal = Calendar.of(periods)
    cases = planted_cases(cal, _rng(seed, "cases"))
    if households < len(cases) + 20:
        raise ValueError(f"need at least {len(cases) + 20} households for the planted cases")
    towns = _geography(households, _rng(seed, "geography"))
    county = _assemble(cal, households, cases, towns, seed)
    if typos:
        plant_typos(county, typos)
    return county


def _assemble(
    cal: Calendar,
    households: int,
    cases: list[Case],
    towns: list[Township],
    seed: int,
    chunks: _Chunks | None = None,
) -> County:
    """The county, or with `chunks` one chunk of a large county's households (the planted
    cases and the invalid rows go into the first chunk only)."""
    frame = _household_frame(households, cases, towns, _rng(seed, "households"))
    if chunks is not None:
        frame = chunks.renumber(frame)
    persons = _people(cal, frame, cases, _rng(seed, "people"), chunks)
    size0 = (
        persons.filter(pl.col("household_id").is_not_null() & (pl.col("_from") == 0))
        .group_by("household_id")
        .agg(pl.len().cast(pl.Int64).alias("_size0"))
    )
    frame = frame.join(size0, on="household_id", how="left", maintain_order="left")
    ctx = _Context(cal, _person_context(cal, persons, frame), pl.DataFrame(), towns)
    ctx.background = ctx.persons.filter(
        pl.col("_case").is_null() & pl.col("household_id").is_not_null() & (pl.col("_from") == 0)
    )
    events = _events(ctx, cases, frame, seed)
    if chunks is None or chunks.first:
        _invalid_rows(ctx, events, seed)
    _identify(events, persons, chunks)
    rosters = [
        _roster(cal, persons, frame, cases, i, _rng(seed, f"roster/{i}")) for i in range(cal.n)
    ]
    county = County(cal, seed, households, cases, rosters, events)
    county.year_before = _year_before_roster(cal, persons, frame, cases, seed)
    screen_oracle(county)
    county.relief = relief_oracle(county)
    return county


def _person_context(cal: Calendar, persons: pl.DataFrame, households: pl.DataFrame) -> pl.DataFrame:
    """Persons with what event generation needs: age at the first period's end, household
    type, income and size, and whether the household gets pro-poor aid."""
    attrs = households.select(
        "household_id", "township", "household_type", "per_capita_income", "_size0"
    )
    return persons.join(attrs, on="household_id", how="left", maintain_order="left").with_columns(
        _age=_age_expr(pl.col("_birth"), cal.end(0)),
        _poor=pl.col("household_type").is_in(["脱贫户", "监测户"]).fill_null(False),
        township=pl.col("township").fill_null(TOWNSHIP_NAMES[0]),
    )


# ------------------------------------------------------------------ value forms

_HALF = list("0123456789X")
_FULL = [chr(0xFF10 + d) for d in range(10)] + ["Ｘ"]
_ASCII_FULL = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
DATE_TEXT_FORMS = ("iso", "slash", "compact", "chinese", "serial")
_GRADE_CHINESE = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}


def _forms_for(
    source: str, col: contract.ColumnSpec, style: FileStyle
) -> tuple[str, dict[str, float]]:
    """The main form of a column in this file and the share of each other form."""
    fmt = style.fmt
    if col.type == "id":
        extras = {
            "fullwidth": 0.03,
            "lower_x": 0.05,
            "id15": 0.03,
            "apostrophe": 0.02,
            "padded": 0.02,
            "ideographic": 0.02,
        }
        if source == "disability" and fmt != "parquet":
            extras["empty"] = 0.08
        return "plain", extras
    if col.type in ("text", "enum"):
        return "plain", {"padded": 0.02, "ideographic": 0.02}
    if col.type == "date":
        if fmt == "parquet":
            return "typed", {}
        if fmt == "xlsx":
            return "cell", {
                "serial_number": 0.04,
                "iso": 0.02,
                "slash": 0.02,
                "chinese": 0.02,
                "compact": 0.01,
            }
        return style.date_form, {f: 0.03 for f in DATE_TEXT_FORMS if f != style.date_form}
    if col.type == "money":
        if fmt == "parquet":
            return "typed", {}
        extras = {"comma": 0.03, "yuan": 0.03, "rmb": 0.03, "fullwidth": 0.03}
        if col.empty == 0:
            extras["empty"] = 0.5
        return ("number" if fmt == "xlsx" else "plain"), extras
    return ("number" if fmt == "xlsx" else "digit"), {"chinese": 0.35, "fullwidth": 0.1}


def _eligibility(rows: pl.DataFrame, key: str, forms: Iterable[str]) -> dict[str, list[bool]]:
    """Rows on which a form shows something different (a lower-case x needs an X, ...)."""
    c = pl.col(key)
    tests = {
        "lower_x": c.str.ends_with("X"),
        "id15": c.str.slice(6, 2) == "19",
        "comma": c >= 100_000,
        "empty": c == 0 if rows.schema[key] == pl.Int64 else c.is_not_null(),
    }
    wanted = {f: tests[f] for f in forms if f in tests}
    if not wanted:
        return {}
    flags = rows.select(**{f: e.fill_null(False) for f, e in wanted.items()})
    return {f: flags[f].to_list() for f in wanted}


def _pick_forms(
    rng: random.Random,
    n: int,
    main: str,
    extras: Mapping[str, float],
    eligible: Mapping[str, list[bool]],
    forced: Mapping[int, str],
    plain: frozenset[int],
) -> list[str]:
    """A form per row: mostly the main one, each other form on its share of rows and at least
    once when some row can show it; rejected rows keep the main form, forced rows their own.
    Only the rows that change are drawn, so a 350 000-row roster costs little."""
    out = [main] * n
    if extras and n:
        count = round(n * sum(extras.values()))
        cum = list(itertools.accumulate(extras.values()))
        for f in rng.choices(list(extras), cum_weights=cum, k=count):
            j = int(rng.random() * n)  # a row drawn twice simply keeps its last form
            if j not in plain and (f not in eligible or eligible[f][j]):
                out[j] = f
    present = set(out)
    for f in extras:
        if f in present:
            continue
        can = eligible.get(f)
        candidates = [
            j
            for j in range(n)
            if out[j] == main and j not in plain and j not in forced and (can is None or can[j])
        ]
        if candidates:
            out[_choice(rng, candidates)] = f
    for j, f in forced.items():
        out[j] = f
    return out


def _id_text(c: pl.Expr, f: pl.Expr) -> pl.Expr:
    id15 = pl.concat_str([c.str.slice(0, 6), c.str.slice(8, 9)])
    return (
        pl.when(f == "fullwidth")
        .then(c.str.replace_many(_HALF, _FULL))
        .when(f == "lower_x")
        .then(c.str.to_lowercase())
        .when(f == "id15")
        .then(id15)
        .when(f == "apostrophe")
        .then(pl.concat_str([pl.lit("'"), c]))
        .when(f == "padded")
        .then(pl.concat_str([pl.lit("  "), c, pl.lit(" ")]))
        .when(f == "ideographic")
        .then(pl.concat_str([pl.lit("\u3000"), c, pl.lit("\u3000")]))
        .when(f == "empty")
        .then(pl.lit(None, pl.String))
        .otherwise(c)
    )


def _text_text(c: pl.Expr, f: pl.Expr) -> pl.Expr:
    return (
        pl.when(f == "padded")
        .then(pl.concat_str([pl.lit(" "), c, pl.lit("  ")]))
        .when(f == "ideographic")
        .then(pl.concat_str([pl.lit("\u3000"), c]))
        .otherwise(c)
    )


def _date_text(c: pl.Expr, f: pl.Expr) -> pl.Expr:
    serial = (c - pl.lit(EXCEL_EPOCH)).dt.total_days().cast(pl.String)
    return (
        pl.when(f == "iso")
        .then(c.dt.strftime("%Y-%m-%d"))
        .when(f == "slash")
        .then(c.dt.strftime("%Y/%-m/%-d"))
        .when(f == "compact")
        .then(c.dt.strftime("%Y%m%d"))
        .when(f == "chinese")
        .then(c.dt.strftime("%Y年%-m月%-d日"))
        .when(f == "serial")
        .then(serial)
    )


def _money_texts(c: pl.Expr, f: pl.Expr) -> pl.Expr:
    sign = pl.when(c < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    a = c.abs()
    whole = a // 100
    frac = (a % 100).cast(pl.String).str.zfill(2)
    short_frac = frac.str.strip_chars_end("0")
    short = pl.concat_str(
        [
            sign,
            whole.cast(pl.String),
            pl.when(short_frac != "")
            .then(pl.concat_str([pl.lit("."), short_frac]))
            .otherwise(pl.lit("")),
        ]
    )
    plain = pl.concat_str([sign, whole.cast(pl.String), pl.lit("."), frac])

    def group(x: pl.Expr) -> pl.Expr:
        return x.cast(pl.String).str.zfill(3)

    grouped = (
        pl.when(whole >= 1_000_000)
        .then(
            pl.concat_str(
                [
                    (whole // 1_000_000).cast(pl.String),
                    pl.lit(","),
                    group(whole // 1000 % 1000),
                    pl.lit(","),
                    group(whole % 1000),
                ]
            )
        )
        .when(whole >= 1000)
        .then(pl.concat_str([(whole // 1000).cast(pl.String), pl.lit(","), group(whole % 1000)]))
        .otherwise(whole.cast(pl.String))
    )
    return (
        pl.when(f == "comma")
        .then(pl.concat_str([sign, grouped, pl.lit("."), frac]))
        .when(f == "yuan")
        .then(pl.concat_str([short, pl.lit("元")]))
        .when(f == "rmb")
        .then(pl.concat_str([pl.lit("￥"), short]))
        .when(f == "fullwidth")
        .then(plain.str.replace_many(_HALF[:10], _FULL[:10]))
        .when(f == "empty")
        .then(pl.lit(None, pl.String))
        .when(f == "plain")
        .then(plain)
    )


def _grade_text(c: pl.Expr, f: pl.Expr) -> pl.Expr:
    return (
        pl.when(f == "chinese")
        .then(
            c.replace_strict(
                list(_GRADE_CHINESE),
                list(_GRADE_CHINESE.values()),
                default=None,
                return_dtype=pl.String,
            )
        )
        .when(f == "fullwidth")
        .then(c.cast(pl.String).str.replace_many(_HALF[:10], _FULL[:10]))
        .when(f == "digit")
        .then(c.cast(pl.String))
    )


_NO_NUMBER = pl.lit(None, pl.Float64)
_NO_DATE = pl.lit(None, pl.Date)


def _cell_exprs(key: str, kind: str, f: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(text, number, date) for one column: an xlsx cell takes the first that is set, a CSV
    field the text, a parquet column the typed value."""
    c = pl.col(key)
    if kind == "id":
        number = pl.when(f == "id15").then(
            pl.concat_str([c.str.slice(0, 6), c.str.slice(8, 9)]).cast(pl.Float64)
        )
        return _id_text(c, f), number, _NO_DATE
    if kind in ("text", "enum"):
        return _text_text(c, f), _NO_NUMBER, _NO_DATE
    if kind == "date":
        serial = (c - pl.lit(EXCEL_EPOCH)).dt.total_days().cast(pl.Float64)
        return (
            _date_text(c, f),
            pl.when(f == "serial_number").then(serial),
            pl.when(f.is_in(["cell", "typed"])).then(c),
        )
    if kind == "money":
        value = c.cast(pl.Float64) / 100
        return _money_texts(c, f), pl.when(f.is_in(["number", "typed"])).then(value), _NO_DATE
    return _grade_text(c, f), pl.when(f == "number").then(c.cast(pl.Float64)), _NO_DATE


@dataclass
class _Table:
    """A file's content: headers and per column the text, number and date series."""

    headers: list[str]
    kinds: list[str]
    text: list[pl.Series]
    number: list[pl.Series]
    date: list[pl.Series]
    keys: list[str] = field(default_factory=list)  # the column keys (extra: "")


def _render(
    rows: pl.DataFrame, source: str, style: FileStyle, period_index: int, rng: random.Random
) -> _Table:
    spec = contract.load()[source]
    # The contract's optional columns a county may not send (the roster's contacts) are
    # written only when generated (`generate(..., contacts=True)`).
    columns = {k: c for k, c in spec.columns.items() if k in rows.columns}
    n = rows.height
    plain = frozenset(rows["_check"].is_not_null().arg_true().to_list())
    marked = rows.with_row_index("_j").filter(pl.col("_id_form").is_not_null())
    forced = dict(marked.select("_j", "_id_form").iter_rows())
    forms: dict[str, pl.Series] = {}
    for key, col in columns.items():
        main, extras = _forms_for(source, col, style)
        eligible = _eligibility(rows, key, extras)
        picked = _pick_forms(
            rng, n, main, extras, eligible, forced if col.type == "id" else {}, plain
        )
        forms[f"_f_{key}"] = pl.Series(picked, dtype=pl.String)
    frame = rows.with_columns(**forms)
    exprs = []
    for key, col in columns.items():
        text, number, date = _cell_exprs(key, col.type, pl.col(f"_f_{key}"))
        override = (pl.col("_column") == key) & pl.col("_override").is_not_null()
        exprs += [
            pl.when(override).then(pl.col("_override")).otherwise(text).alias(f"{key}#t"),
            pl.when(override).then(None).otherwise(number).cast(pl.Float64).alias(f"{key}#n"),
            pl.when(override).then(None).otherwise(date).cast(pl.Date).alias(f"{key}#d"),
        ]
    cells = frame.select(exprs)
    keys = list(columns)
    table = _Table(
        headers=_headers(source, style, period_index, keys),
        kinds=[columns[k].type for k in keys],
        text=[cells[f"{k}#t"] for k in keys],
        number=[cells[f"{k}#n"] for k in keys],
        date=[cells[f"{k}#d"] for k in keys],
        keys=keys,
    )
    return _quirks(table, source, style, rng)


def _headers(source: str, style: FileStyle, period_index: int, keys: Sequence[str]) -> list[str]:
    spec = contract.load()[source]
    headers = []
    for j, key in enumerate(keys):
        col = spec.columns[key]
        if style.lang == "en" or not col.aliases:
            name = key
        else:
            name = col.aliases[(period_index + j) % len(col.aliases)]
            if "decorated_headers" in style.quirks:
                name = next((a for a in col.aliases if "(" in a), name)
        if "decorated_headers" in style.quirks:
            name = _decorate(name, j)
        headers.append(name)
    return headers


def _decorate(header: str, j: int) -> str:
    """Header spellings the contract folds away: full-width forms and blanks at the ends."""
    if "(" in header:
        return header.replace("(", "（").replace(")", "）")
    if j % 3 == 0:
        return f" {header} "
    if j % 3 == 1:
        return (
            "".join(_ASCII_FULL.get(ch, ch) for ch in header)
            if header.isascii()
            else f"\u3000{header}"
        )
    return header


def _quirks(table: _Table, source: str, style: FileStyle, rng: random.Random) -> _Table:
    n = len(table.text[0]) if table.text else 0
    if "extra_column" in style.quirks:
        name, values = ("备注", REMARKS) if source == "roster" else ("科室", DEPARTMENTS)
        table.headers.append(name if style.lang == "zh" else "remark")
        table.keys.append("")
        table.kinds.append("text")
        table.text.append(
            pl.Series([rng.choice(values) or None for _ in range(n)], dtype=pl.String)
        )
        table.number.append(pl.Series([None] * n, dtype=pl.Float64))
        table.date.append(pl.Series([None] * n, dtype=pl.Date))
    if "shuffled" in style.quirks:
        order = list(range(len(table.headers)))
        rng.shuffle(order)
        for attr in ("headers", "kinds", "text", "number", "date", "keys"):
            values = getattr(table, attr)
            setattr(table, attr, [values[k] for k in order])
    return table


# ------------------------------------------------------------------ writers


def _write_csv(path: Path, table: _Table, style: FileStyle) -> None:
    path.write_bytes((_csv_header(table, style) + _csv_body(table, style)).encode(style.encoding))


def _csv_header(table: _Table, style: FileStyle) -> str:
    return ",".join(_csv_field(h) for h in table.headers) + ("\r\n" if style.crlf else "\n")


def _csv_body(table: _Table, style: FileStyle) -> str:
    frame = pl.DataFrame(
        {f"c{j}": s for j, s in enumerate(table.text)},
        schema={f"c{j}": pl.String for j in range(len(table.text))},
    )
    return frame.write_csv(include_header=False, line_terminator="\r\n" if style.crlf else "\n")


def _csv_field(text: str) -> str:
    return f'"{text}"' if any(ch in text for ch in ',"\n') else text


@dataclass
class _Sheet:
    """An open workbook written row by row (constant memory), and its next row."""

    workbook: xlsxwriter.Workbook
    sheet: Any
    date_format: Any
    money_format: Any
    next_row: int = 1  # row 0 holds the headers


def _open_xlsx(
    path: Path,
    title: str,
    headers: Sequence[str],
    quirks: frozenset[str] = frozenset(),
    period: str = "",
) -> _Sheet:
    workbook = xlsxwriter.Workbook(
        str(path),
        {
            # Merged ranges reach down into rows not yet written, which constant memory
            # (rows written in order, each flushed) cannot do.
            "constant_memory": "merged_cells" not in quirks,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    # A fixed creation time keeps the file byte-identical between runs.
    workbook.set_properties({"title": title, "author": COUNTY_NAME, "created": FIXED_CREATED})
    sheet = workbook.add_worksheet("Sheet1")
    date_format = workbook.add_format({"num_format": "yyyy/m/d"})
    money_format = workbook.add_format({"num_format": "#,##0.00"})
    top = 0
    if "title_rows" in quirks:
        heading = workbook.add_format({"bold": True, "align": "center"})
        yyyy, mm = period.split("-") if period else ("", "")
        sheet.merge_range(0, 0, 0, max(len(headers) - 1, 1), f"{title}（{yyyy}年{mm}月）", heading)
        sheet.write_string(1, 0, f"填报单位：{COUNTY_NAME}乡村振兴局")
        top = TITLE_ROWS
    for c, header in enumerate(headers):
        sheet.write_string(top, c, header)
    return _Sheet(workbook, sheet, date_format, money_format, next_row=top + 1)


def _xlsx_rows(out: _Sheet, table: _Table, merged: Sequence[tuple[int, int]] = ()) -> None:
    """The table's rows from `out.next_row` on; `merged` holds (first, last) row indexes of
    the table whose household_id and township cells are merged into one each."""
    sheet = out.sheet
    merged_cols = [table.keys.index(k) for k in MERGED_KEYS if merged and k in table.keys]
    in_merge = {j for first, last in merged for j in range(first, last + 1)}
    columns = [
        [
            d if d is not None else (x if x is not None else t)
            for t, x, d in zip(text.to_list(), number.to_list(), date.to_list(), strict=True)
        ]
        for text, number, date in zip(table.text, table.number, table.date, strict=True)
    ]
    formats = [out.money_format if kind == "money" else None for kind in table.kinds]
    for first, last in merged:
        for c in merged_cols:
            value = columns[c][first]
            top, bottom = out.next_row + first, out.next_row + last
            sheet.merge_range(top, c, bottom, c, None)
            if value is not None:
                _write_cell(out, top, c, value, formats[c])
    for j, row in enumerate(zip(*columns, strict=True)):
        r = out.next_row + j
        for c, value in enumerate(row):
            if value is None or (j in in_merge and c in merged_cols):
                continue
            _write_cell(out, r, c, value, formats[c])
    out.next_row += len(columns[0]) if columns else 0


def _write_cell(out: _Sheet, r: int, c: int, value: Any, fmt: Any) -> None:
    sheet = out.sheet
    if isinstance(value, dt.date):
        sheet.write_datetime(r, c, dt.datetime(value.year, value.month, value.day), out.date_format)
    elif isinstance(value, float):
        sheet.write_number(r, c, value, fmt)
    else:
        sheet.write_string(r, c, value)


def _write_xlsx(
    path: Path,
    table: _Table,
    title: str,
    style: FileStyle | None = None,
    households: Sequence[tuple[int, int]] = (),
    period: str = "",
) -> None:
    """`households`: (first, last) row indexes of each household's rows, merged when the
    style has the merged_cells quirk."""
    quirks = style.quirks if style else frozenset()
    out = _open_xlsx(path, title, table.headers, quirks, period)
    _xlsx_rows(out, table, households if "merged_cells" in quirks else ())
    out.workbook.close()


def _household_runs(rows: pl.DataFrame) -> list[tuple[int, int]]:
    """(first, last) row indexes of each run of two or more consecutive rows of one
    household (and one township), as a register export merges them."""
    if "household_id" not in rows.columns or rows.height < 2:
        return []
    key = pl.concat_str([pl.col(k).fill_null("\x00") for k in MERGED_KEYS], separator="|")
    runs = (
        rows.select(key.alias("key"), pl.col("household_id").is_null().alias("none"))
        .with_row_index("j")
        .with_columns(run=(pl.col("key") != pl.col("key").shift()).fill_null(True).cum_sum())
        .filter(~pl.col("none"))
        .group_by("run", maintain_order=True)
        .agg(first=pl.col("j").min(), last=pl.col("j").max())
        .filter(pl.col("last") > pl.col("first"))
    )
    return [(int(a), int(b)) for a, b in runs.select("first", "last").iter_rows()]


def _parquet_frame(table: _Table) -> pl.DataFrame:
    columns = {}
    for header, kind, text, number, date in zip(
        table.headers, table.kinds, table.text, table.number, table.date, strict=True
    ):
        columns[header] = date if kind == "date" else number if kind == "money" else text
    return pl.DataFrame(columns)


def _write_parquet(path: Path, table: _Table) -> None:
    _parquet_frame(table).write_parquet(path, statistics=True)


def write_inbox(county: County, out: Path) -> None:
    cal = county.cal
    for i, period in enumerate(cal.periods):
        folder = out / period
        folder.mkdir(parents=True, exist_ok=True)
        for source in contract.SOURCES:
            style = county.style(source, i)
            if style is None:
                continue
            rows = county.delivery(source, i)
            table = _render(rows, source, style, i, _rng(county.seed, f"forms/{period}/{source}"))
            path = folder / style.file_name(period)
            if style.fmt == "csv":
                _write_csv(path, table, style)
            elif style.fmt == "xlsx":
                title = contract.load()[source].title
                _write_xlsx(path, table, title, style, _household_runs(rows), period)
            else:
                _write_parquet(path, table)


# ------------------------------------------------------------------ manifest


def manifest(county: County) -> dict[str, Any]:
    cal = county.cal
    files: dict[str, dict[str, str | None]] = {}
    rows: dict[str, dict[str, int]] = {}
    unmatched: dict[str, dict[str, int]] = {}
    population: dict[str, dict[str, int]] = {}
    invalid: list[dict[str, Any]] = []
    for i, period in enumerate(cal.periods):
        roster = county.rosters[i].filter(pl.col("_check").is_null())
        population[period] = {
            "households": roster["household_id"].n_unique(),
            "persons": roster.height,
        }
        files[period], rows[period], unmatched[period] = {}, {}, {}
        for source in contract.SOURCES:
            style = county.style(source, i)
            data = county.delivery(source, i)
            name = style.file_name(period) if style else None
            files[period][source] = name
            rows[period][source] = data.height if style else 0
            first = first_data_row(style) if style else 2
            invalid += _invalid_entries(data, period, source, name, first)
            if source != "roster":
                valid = data.filter(pl.col("_check").is_null())
                unmatched[period][source] = valid.join(
                    roster.select("id_number"), on="id_number", how="anti"
                ).height
    return {
        "seed": county.seed,
        "households": county.households,
        "periods": list(cal.periods),
        "county": {"region": COUNTY, "name": COUNTY_NAME},
        "parameters": {
            "monitoring_line": _yuan(MONITORING_LINE),
            "medical_oop_threshold": {k: _yuan(v) for k, v in MEDICAL_THRESHOLD.items()},
            "education_cost_threshold": _yuan(EDUCATION_THRESHOLD),
            "accident_loss_threshold": _yuan(ACCIDENT_THRESHOLD),
        },
        "files": files,
        "rows": rows,
        "unmatched": unmatched,
        "population": population,
        "invalid_rows": invalid,
        "expected": county.expected,
        "planted": county.planted,
        "feedback": feedback_manifest(county),
        "year_before": year_before_manifest(county),
        "relief_estimate": relief_manifest(county),
        **({"typos": entries} if (entries := typo_entries(county)) else {}),
    }


# ------------------------------------------------------------------ township feedback

FEEDBACK_FOLDER = "feedback"
FEEDBACK_HEADERS = ["户编号", "乡镇", "村", "户主姓名", "期次", "核实结果", "核实日期", "备注"]
FEEDBACK_NOTES = {
    "确认纳入": "入户核实属实，已评议公示",
    "不予纳入": "已获商业保险赔付，收入稳定",
    "待核实": "户主外出务工，待返乡核实",
}


def feedback_manifest(county: County) -> dict[str, Any] | None:
    """The sample feedback file: one township's answers on period 1's list (the planted
    cases with `feedback`; its other listed households left unanswered), and the listing
    status each answered household has once the file is imported."""
    answered = [c for c in county.cases if c.feedback is not None]
    if not answered or not county.expected:
        return None
    period = county.cal.periods[0]
    planted = {p["case"]: p["household_id"] for p in county.planted}
    first = {r["household_id"]: r for r in county.expected[period]}
    township = first[planted[answered[0].case]]["township"]
    name = f"疑似监测对象_{township}_{period.replace('-', '')}.xlsx"
    return {
        "period": period,
        "township": township,
        "file": f"{FEEDBACK_FOLDER}/{period}/{name}",
        "answers": {
            planted[c.case]: {
                "result": c.feedback[0],
                "date": c.feedback[1].isoformat() if c.feedback[1] else None,
                "statuses": {
                    county.cal.periods[i]: status for i, status in sorted(c.feedback_status.items())
                },
            }
            for c in answered
            if c.feedback is not None
        },
    }


def write_feedback(county: County, out: Path, entry: dict[str, Any]) -> Path:
    """The filled-in list the township sends back (xlsx, as published, answers added)."""
    listed = [r for r in county.expected[entry["period"]] if r["township"] == entry["township"]]
    heads = {
        r["household_id"]: r["name"]
        for r in county.rosters[0]
        .filter(pl.col("relation") == "户主")
        .select("household_id", "name")
        .iter_rows(named=True)
    }
    path = out / entry["file"]
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlsxwriter.Workbook(str(path), {"strings_to_numbers": False})
    try:
        # A fixed creation time: the same seed gives the same bytes.
        workbook.set_properties({"created": FIXED_CREATED})
        sheet = workbook.add_worksheet("疑似监测户")
        dates = workbook.add_format({"num_format": "yyyy-mm-dd"})
        sheet.write_row(0, 0, FEEDBACK_HEADERS)
        for r, row in enumerate(listed, start=1):
            hid = row["household_id"]
            cells = [hid, row["township"], row["village"], heads.get(hid), entry["period"]]
            sheet.write_row(r, 0, cells)
            answer = entry["answers"].get(hid)
            if answer is None:
                continue  # not answered yet: the import counts it, the report may call it overdue
            sheet.write_string(r, 5, answer["result"])
            if answer["date"]:
                sheet.write_datetime(r, 6, dt.datetime.fromisoformat(answer["date"]), dates)
            sheet.write_string(r, 7, FEEDBACK_NOTES[answer["result"]])
    finally:
        workbook.close()
    return path


def _invalid_entries(
    data: pl.DataFrame, period: str, source: str, name: str | None, first: int = 2
) -> list[dict[str, Any]]:
    marked = data.with_row_index("_row").filter(pl.col("_check").is_not_null())
    return [
        {
            "period": period,
            "source": source,
            "file": name,
            "row_number": row + first,
            "column": column,
            "check": check,
        }
        for row, column, check in marked.select("_row", "_column", "_check").iter_rows()
    ]


def generate(
    out: Path,
    households: int,
    periods: list[str],
    seed: int,
    *,
    chunk_households: int | None = None,
    roster_xlsx: str | None = None,
    contacts: bool = False,
    typos: int = 0,
) -> dict[str, Any]:
    """Write the sample inbox under `out` (one folder per period) and `out/manifest.json`;
    return the manifest. Refuses to write into a period folder that already has files.
    `roster_xlsx` (a key of ROSTER_SHAPES) writes every period's roster as an xlsx of that
    shape instead of the usual CSV and parquet files. `contacts` adds the roster's optional
    columns (联系电话, 村民小组, 住址, 帮扶责任人; `with_contacts`). `typos` plants that many
    records with a mistyped ID number of each kind, and of people absent from the roster
    (`plant_typos`), listed in the manifest's `typos`.

    A county of more than CHUNKED_ABOVE households (or any, given `chunk_households`) is
    generated in chunks of households, so that memory stays bounded; see
    `_generate_chunked` for how its manifest differs."""
    if roster_xlsx is not None:
        roster_xlsx_style(roster_xlsx)  # an unknown shape stops here
    chunk = chunk_size(households) if chunk_households is None else chunk_households
    if chunk is not None:
        if roster_xlsx is not None or contacts or typos:
            raise ValueError(
                "a roster xlsx shape, contacts or typos are only written for a county built whole"
            )
        return _generate_chunked(Path(out), households, list(periods), seed, chunk)
    county = build(households, periods, seed, typos)
    county.roster_shape = roster_xlsx
    if contacts:
        county.rosters = [with_contacts(r) for r in county.rosters]
    out = Path(out)
    for period in (year_before_period(county.cal), *county.cal.periods):
        folder = out / period
        if folder.is_dir() and any(folder.iterdir()):
            raise FileExistsError(f"{folder} is not empty; remove it or choose another --out")
    write_inbox(county, out)
    write_year_before(county, out)
    content = manifest(county)
    if content["feedback"] is not None:
        write_feedback(county, out, content["feedback"])
    text = json.dumps(content, ensure_ascii=False, sort_keys=True, indent=2) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")
    result: dict[str, Any] = json.loads(text)
    return result


CONTACT_GROUPS = ("一组", "二组", "三组", "四组", "五组", "六组", "七组", "八组")
CONTACT_HELPERS = ("王建国", "李红梅", "张志强", "刘海燕", "陈立新", "杨春华", "赵德明")


def with_contacts(roster: pl.DataFrame) -> pl.DataFrame:
    """The roster with the optional columns a county may add: 联系电话 (every head and
    about a third of the others), 村民小组 and 住址 per household, 帮扶责任人 for 脱贫户 and
    监测户. Derived from the household and ID numbers, without a random draw, so every other
    column is what the same seed gives without them."""
    number = pl.col("household_id").str.slice(-4).cast(pl.Int64, strict=False).fill_null(0)
    group = pl.lit(pl.Series(CONTACT_GROUPS)).get(number % len(CONTACT_GROUPS))
    helper = pl.lit(pl.Series(CONTACT_HELPERS)).get(number % len(CONTACT_HELPERS))
    digits = pl.col("id_number").str.slice(8, 9).str.reverse()
    return roster.with_columns(
        phone=pl.when((pl.col("relation") == "户主") | (pl.col("_pid") % 3 == 0))
        .then(pl.concat_str([pl.lit("13"), digits]))
        .otherwise(None),
        group=group,
        address=pl.concat_str(
            [pl.col("village"), group, (number % 60 + 1).cast(pl.String), pl.lit("号")]
        ),
        helper=pl.when(pl.col("household_type").is_in(["脱贫户", "监测户"])).then(helper),
    )


# ------------------------------------------------------------------ large counties, in chunks

# `build` holds the whole county in memory: about 23 KB per household over 12 months (6.6 GB
# for 290,000 households). A larger county is built and written a chunk of households at a
# time, each appended to every period's files before the next is built, so memory is that
# of one chunk (about 2.3 GB for 100,000 households over 12 months) however large the county.
CHUNKED_ABOVE = 300_000
CHUNK_HOUSEHOLDS = 100_000
EXPECTED_FILE = "expected.parquet"
XLSX_MAX_ROWS = 1_048_576


def chunk_size(households: int) -> int | None:
    """Households per chunk for a county of this size; None: it is built whole."""
    return CHUNK_HOUSEHOLDS if households > CHUNKED_ABOVE else None


class _Chunks:
    """What the chunks of one county share: household numbers within a village, person
    ID sequences and natural-key numbers go on from one chunk to the next, so that no two
    chunks issue the same identifier."""

    def __init__(self) -> None:
        self.first = True
        self._villages = pl.DataFrame(
            schema={"_tcode": pl.Int64, "_vcode": pl.Int64, "_taken": pl.Int64}
        )
        self._seen = pl.DataFrame(
            schema={"_region": pl.String, "_birth": pl.Date, "_sex": pl.Int32, "_seen": pl.Int64}
        )
        self._keys: dict[str, int] = {}

    def renumber(self, households: pl.DataFrame) -> pl.DataFrame:
        village = ["_tcode", "_vcode"]
        prefix = len(COUNTY) + 6  # county, township and village codes
        number = pl.col("household_id").str.slice(prefix).cast(pl.Int64) + pl.col("_taken")
        frame = (
            households.join(self._villages, on=village, how="left", maintain_order="left")
            .with_columns(pl.col("_taken").fill_null(0))
            .with_columns(
                household_id=pl.concat_str(
                    [
                        pl.col("household_id").str.slice(0, prefix),
                        number.cast(pl.String).str.zfill(4),
                    ]
                )
            )
            .drop("_taken")
        )
        taken = households.group_by(village).agg(pl.len().cast(pl.Int64).alias("_taken"))
        self._villages = (
            pl.concat([self._villages, taken]).group_by(village).agg(pl.col("_taken").sum())
        )
        return frame

    def number_from(self, persons: pl.DataFrame) -> pl.DataFrame:
        """Persons with `_seen`: how many earlier chunks' people share their (region, birth,
        sex), where this chunk's sequence numbers start."""
        key = ["_region", "_birth", "_sex"]
        frame = persons.join(self._seen, on=key, how="left", maintain_order="left").with_columns(
            pl.col("_seen").fill_null(0)
        )
        counts = persons.group_by(key).agg(pl.len().cast(pl.Int64).alias("_seen"))
        self._seen = pl.concat([self._seen, counts]).group_by(key).agg(pl.col("_seen").sum())
        return frame

    def keys_from(self, source: str, count: int) -> int:
        """The first natural-key number of this chunk's `count` keys of `source`."""
        first = self._keys.get(source, 0) + 1
        self._keys[source] = first - 1 + count
        return first


class _Appender:
    """Every period's files kept open while the chunks are appended to them: CSV bodies
    after one header, parquet row groups, rows of a constant-memory xlsx worksheet."""

    def __init__(self, out: Path, cal: Calendar) -> None:
        self.out, self.cal = out, cal
        self.rows: dict[tuple[str, str], int] = {}  # rows written per (period, source)
        self._headers: dict[tuple[str, str], list[str]] = {}
        self._csv: dict[tuple[str, str], Any] = {}
        self._parquet: dict[tuple[str, str], pq.ParquetWriter] = {}
        self._xlsx: dict[tuple[str, str], _Sheet] = {}

    def append(self, county: County) -> None:
        for i, period in enumerate(self.cal.periods):
            folder = self.out / period
            folder.mkdir(parents=True, exist_ok=True)
            for source in contract.SOURCES:
                style = style_for(source, i)
                if style is None:
                    continue
                rows = county.delivery(source, i)
                rng = _rng(county.seed, f"forms/{period}/{source}")
                key = (period, source)
                table = self._align(key, _render(rows, source, style, i, rng))
                path = folder / style.file_name(period)
                if style.fmt == "csv":
                    self._append_csv(key, path, table, style)
                elif style.fmt == "xlsx":
                    self._append_xlsx(key, path, table, contract.load()[source].title)
                else:
                    self._append_parquet(key, path, table)
                self.rows[key] = self.rows.get(key, 0) + rows.height
        self._append_year_before(county)

    def _append_year_before(self, county: County) -> None:
        """The chunk's households on the roster of a year before (INCOME_DROP)."""
        if county.year_before is None:
            return
        period, style = year_before_period(self.cal), style_for("roster", 0)
        assert style is not None
        folder = self.out / period
        folder.mkdir(parents=True, exist_ok=True)
        rows = county.year_before
        table = _render(rows, "roster", style, 0, _rng(county.seed, f"forms/{period}/roster"))
        key = (period, "roster")
        table = self._align(key, table)
        self._append_csv(key, folder / style.file_name(period), table, style)
        self.rows[key] = self.rows.get(key, 0) + rows.height

    def _align(self, key: tuple[str, str], table: _Table) -> _Table:
        """Columns in the first chunk's order (a shuffled file draws its order per chunk)."""
        first = self._headers.setdefault(key, list(table.headers))
        if table.headers == first:
            return table
        if len(set(first)) != len(first) or sorted(first) != sorted(table.headers):
            raise SampleError(f"{key}: the chunks' headers cannot be aligned")
        order = [table.headers.index(h) for h in first]
        return _Table(
            headers=first,
            kinds=[table.kinds[k] for k in order],
            text=[table.text[k] for k in order],
            number=[table.number[k] for k in order],
            date=[table.date[k] for k in order],
            keys=[table.keys[k] for k in order] if table.keys else [],
        )

    def _append_csv(
        self, key: tuple[str, str], path: Path, table: _Table, style: FileStyle
    ) -> None:
        handle = self._csv.get(key)
        if handle is None:
            handle = self._csv[key] = path.open("wb")
            handle.write(_csv_header(table, style).encode(style.encoding))
        # The byte-order mark opens the file once, not every chunk.
        encoding = "utf-8" if style.encoding == "utf-8-sig" else style.encoding
        handle.write(_csv_body(table, style).encode(encoding))

    def _append_parquet(self, key: tuple[str, str], path: Path, table: _Table) -> None:
        arrow = _parquet_frame(table).to_arrow()
        writer = self._parquet.get(key)
        if writer is None:
            writer = self._parquet[key] = pq.ParquetWriter(path, arrow.schema)
        else:
            arrow = arrow.cast(writer.schema)
        writer.write_table(arrow)

    def _append_xlsx(self, key: tuple[str, str], path: Path, table: _Table, title: str) -> None:
        sheet = self._xlsx.get(key)
        if sheet is None:
            sheet = self._xlsx[key] = _open_xlsx(path, title, table.headers)
        if sheet.next_row + len(table.text[0]) > XLSX_MAX_ROWS:
            raise SampleError(f"{path.name}: more rows than a worksheet holds")
        _xlsx_rows(sheet, table)

    def close(self) -> None:
        for handle in self._csv.values():
            handle.close()
        for writer in self._parquet.values():
            writer.close()
        for sheet in self._xlsx.values():
            sheet.workbook.close()
        self._csv, self._parquet, self._xlsx = {}, {}, {}


_EXPECTED_SCHEMA: dict[str, pl.DataType] = {
    "period": pl.String(),
    "household_id": pl.String(),
    "township": pl.String(),
    "village": pl.String(),
    "household_type": pl.String(),
    "household_size": pl.Int64(),
    "per_capita_income": pl.String(),
    "colour": pl.String(),
    "risk_codes": pl.List(pl.String()),
    "listing_status": pl.String(),
    "medical_oop": pl.String(),
    "education_cost": pl.String(),
    "accident_loss": pl.String(),
    "rigid_expenditure": pl.String(),
}


def _generate_chunked(
    out: Path, households: int, periods: list[str], seed: int, chunk: int
) -> dict[str, Any]:
    """`generate` for a large county, a chunk of households at a time.

    Each chunk is a county of its own (its own seed derived from `seed`, its own outsiders
    and background records) sharing the townships and villages; the planted cases and the
    invalid rows go into the first chunk only. Identifiers never repeat across chunks. Files
    hold the chunks one after another (each chunk in file order). The manifest has the same
    keys as a whole county's, except that the expected lists, too long for JSON at this
    size, are in `expected.parquet` (one row per listed household and period) and
    `expected` holds their counts per period; `chunks` gives the chunk sizes; and there
    is no feedback file."""
    cal = Calendar.of(periods)
    cases = planted_cases(cal, _rng(seed, "cases"))
    if chunk < len(cases) + 20 or households < chunk:
        raise ValueError(
            f"chunks need at least {len(cases) + 20} households, and the county one chunk"
        )
    for period in (year_before_period(cal), *cal.periods):
        folder = out / period
        if folder.is_dir() and any(folder.iterdir()):
            raise FileExistsError(f"{folder} is not empty; remove it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    towns = _geography(households, _rng(seed, "geography"))
    count = math.ceil(households / chunk)
    sizes = [households // count + (c < households % count) for c in range(count)]
    chunks, appender = _Chunks(), _Appender(out, cal)
    totals: dict[str, Any] = {}
    expected_writer: pq.ParquetWriter | None = None
    try:
        for c, size in enumerate(sizes):
            part_seed = _rng(seed, f"chunk/{c}").getrandbits(48)
            county = _assemble(cal, size, cases if c == 0 else [], towns, part_seed, chunks)
            chunks.first = False
            written = dict(appender.rows)
            part = manifest(county)
            appender.append(county)
            del county
            _merge_chunk(totals, part, written)
            rows = [{"period": p, **r} for p, listed in part["expected"].items() for r in listed]
            table = pl.DataFrame(rows, schema=_EXPECTED_SCHEMA).to_arrow()
            if expected_writer is None:
                expected_writer = pq.ParquetWriter(out / EXPECTED_FILE, table.schema)
            expected_writer.write_table(table.cast(expected_writer.schema))
    finally:
        appender.close()
        if expected_writer is not None:
            expected_writer.close()
    result = {
        **totals,
        "seed": seed,
        "households": households,
        "chunks": sizes,
        "expected_file": EXPECTED_FILE,
        # A township's feedback file would answer one chunk's households only: none here.
        "feedback": None,
    }
    text = json.dumps(result, ensure_ascii=False, sort_keys=True, indent=2) + "\n"
    (out / "manifest.json").write_text(text, encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _merge_chunk(
    totals: dict[str, Any], part: dict[str, Any], written: dict[tuple[str, str], int]
) -> None:
    """Add one chunk's manifest to the county's: counts summed, invalid rows renumbered
    after the rows of earlier chunks, planted cases from the first chunk."""
    invalid = [
        {**r, "row_number": r["row_number"] + written.get((r["period"], r["source"]), 0)}
        for r in part["invalid_rows"]
    ]
    counts = {p: len(listed) for p, listed in part["expected"].items()}
    if not totals:
        totals.update(part, invalid_rows=invalid, expected=counts)
        return
    for name in ("rows", "unmatched", "population"):
        for period, by_key in part[name].items():
            for key, n in by_key.items():
                totals[name][period][key] += n
    if part["year_before"] is not None:  # the roster of a year before: its counts add up
        for name in ("rows", "population"):
            for key, n in part["year_before"][name].items():
                totals["year_before"][name][key] += n
    totals["relief_estimate"]["households"].update(part["relief_estimate"]["households"])
    totals["invalid_rows"] += invalid
    for period, n in counts.items():
        totals["expected"][period] += n


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """`python -m dev.sample --out DIR [--households N] [--periods P1,P2] [--seed S]
    [--roster-xlsx merged|title|both] [--typos N]`: a synthetic county inbox (all the messy
    forms) and its manifest of planted cases. Refuses to write into non-empty period
    folders."""
    import argparse

    from screening.periods import PeriodError, check_period

    parser = argparse.ArgumentParser(prog="python -m dev.sample", description=main.__doc__)
    parser.add_argument("--out", type=Path, required=True, help="where to write the inbox")
    parser.add_argument("--households", type=int, default=500, help="number of households")
    parser.add_argument(
        "--periods", default="2026-07,2026-08,2026-09", help="comma-separated consecutive periods"
    )
    parser.add_argument("--seed", type=int, default=1, help="same seed, same files")
    parser.add_argument(
        "--typos",
        type=int,
        default=0,
        help="plant this many records with a mistyped ID number of each kind, and of people "
        "absent from the roster (listed in the manifest's typos)",
    )
    parser.add_argument(
        "--roster-xlsx",
        choices=["merged", "title", "both"],
        help="write the roster as an xlsx of this shape: merged (户编号/乡镇 merged per "
        "household), title (title rows above the header) or both",
    )
    parser.add_argument(
        "--contacts",
        action="store_true",
        help="add the roster's optional columns 联系电话, 村民小组, 住址, 帮扶责任人",
    )
    args = parser.parse_args(argv)
    try:
        periods = [check_period(p.strip()) for p in args.periods.split(",") if p.strip()]
        if not periods or periods != sorted(set(periods)):
            raise SampleError("periods must be distinct and in order, e.g. 2026-07,2026-08")
        if args.households < 1:
            raise SampleError("at least one household")
        made = generate(
            args.out,
            args.households,
            periods,
            args.seed,
            roster_xlsx=args.roster_xlsx,
            contacts=args.contacts,
            typos=args.typos,
        )
    except (PeriodError, SampleError, ValueError, FileExistsError, OSError) as exc:
        print(f"cannot generate the sample: {exc}", file=sys.stderr)
        return 2
    print(
        f"wrote {len(periods)} period(s) for {args.households} households to {args.out} "
        f"(manifest: {args.out / 'manifest.json'}, {len(made.get('planted', []))} planted cases)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
