"""One screening run of a period: ingest → screen → store → publish → report, in `runs`.

The run is cut into plain stage functions that take small arguments (a `RunRequest` of
paths and names, the run id) so that the Prefect flow (flow.py) can call each one as a
task; `RUN_STAGES` is their one order, which the flow and `run_period` both iterate:

    prepare → start_run → ingest_inputs → screen_period → publish_run → finish_run
                                   (on any failure: fail_run)

`prepare` refuses two files of one source before anything is recorded; `ingest_inputs`
raises `DeliveryHeld` when a completeness gate held a delivery that `--accept-held` does
not accept: the run is recorded `held` and nothing is screened or published.
`screen_period` also makes the period's linkage suggestions (screening.linkage: records
whose ID number reaches nobody, and whom they probably belong to); `publish_run` stores
them and writes the 身份核对 lists with the other files.


`start_run` refuses, before anything is recorded, what can only be checked against the
database: a `--township` no roster names, real data into the synthetic sample's database
or the other way round. Each stage opens the database and closes it before it returns, so
an analyst can open the file between runs (a stage that finds it open waits for it, up to
`busy_timeout` seconds); the one-writer lock (`lock.hold`), held by `run_period` and the
flow for the whole run, keeps a second run off the same database meanwhile. The
screen stage hands its frames to the publish stage through a private work folder
(`<out>/.work/<run_id>/`), removed when the run ends either way. A run that fails is
recorded as failed with its reason, and leaves the published lists and the stored lists as
they were: the publish stage writes the outputs, the files and the run's success in one
transaction, the files staged and renamed only when all of them are complete.

Beside this module: `pipeline.inputs` (what the screen stage reads), `pipeline.work` (the
work folder, and what a killed run leaves behind), `pipeline.outputs` (what the publish
stage makes of the result: outcome rows, source statuses, the run report) and
`pipeline.errors` (the one-line reason a failed run records).

A run that dies without recording its end (killed, power cut) stays 'running' until the
next run takes the lock: `start_run` then records it as interrupted and removes what it
left behind (its work folder, files staged under temporary names). `after_stage` is a
no-op seam the crash tests replace to make a run die between stages (docs/reliability.md).
"""

from __future__ import annotations

import datetime as dt
import difflib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import duckdb
import polars as pl

from screening import config, contract, ids, params
from screening.db import deliveries as db_deliveries
from screening.db import linkage as db_linkage
from screening.db import lock
from screening.db import roster as db_roster
from screening.db import runs as db_runs
from screening.db import schema as db_schema
from screening.db.connect import connect, transaction
from screening.ingest.deliveries import held, ingest_period, unrecognised_files
from screening.ingest.gates import DeliveryHeld, EarlierDeliveryHeld, GateResult
from screening.ingest.inbox import check_one_file_per_source, discover, has_data_files
from screening.ingest.results import SourceResult, read_guarded
from screening.linkage import suggest as linkage
from screening.periods import check_period
from screening.pipeline import outputs
from screening.pipeline.errors import RunError, one_line, run_status
from screening.pipeline.inputs import load_inputs, previously_listed
from screening.pipeline.work import (
    ended_work,
    read_work,
    remove_staged_temps,
    remove_work,
    work_dir,
    write_work,
)
from screening.publish import lists as publish
from screening.publish import report
from screening.publish.about import delivery_notes
from screening.publish.columns import PublishMeta
from screening.publish.departments import stage_departments
from screening.publish.files import StagedFiles
from screening.publish.report_files import stage_report
from screening.rules import batches, followup
from screening.rules.screen import ScreenResult, screen
from screening.version import code_version

# The points at which `after_stage` is called, in order. "store" lies inside the publish
# stage: the lists are written to the database but not committed, and no file is written.
STAGES = ("prepare", "start", "ingest", "screen", "store", "publish", "finish")


@dataclass(frozen=True)
class RunRequest:
    """What a run was asked to do: only paths and names, cheap to pass to a flow task."""

    db: Path
    inbox: Path
    out: Path
    period: str
    params_file: Path | None = None
    aliases_file: Path | None = None
    township: str | None = None  # None: every township
    mask_ids: bool = False
    accept_held: tuple[str, ...] = ()  # sources whose held delivery the officer accepts
    demo: bool = False  # the inbox is the bundled synthetic sample: every output says so
    busy_timeout: float = 0.0  # seconds to wait for a database another process has open


@dataclass
class Published:
    """What the publish stage wrote."""

    result: ScreenResult
    suspects: pl.DataFrame  # the published rows (one township's rows for a township run)
    report: report.RunReport
    written: list[Path]


@dataclass
class RunOutcome:
    run_id: str
    period: str
    township: str | None
    result: ScreenResult
    suspects: pl.DataFrame  # what was published (one township's rows for a township run)
    ingest: list[SourceResult]
    report: report.RunReport
    written: list[Path] = field(default_factory=list)


def new_run_id(period: str, now: dt.datetime) -> str:
    return f"{period}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def nearest(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.3)
    return "、".join(close) if close else "、".join(names[:5])


# ---------------------------------------------------------------- refusals and records


def _check_demo(con: duckdb.DuckDBPyConnection, req: RunRequest) -> None:
    """The synthetic sample and real data never share a database: listing statuses and
    the follow-up would mix fake people with real ones."""
    demo, other = db_runs.demo_runs(con)
    if req.demo and other:
        raise RunError(
            f"数据库 {req.db} 中已有真实数据的筛查，示例数据不能写入 the database holds runs of "
            "real data: the synthetic sample goes to its own database (--demo without --db "
            "uses demo/screening.duckdb)"
        )
    if not req.demo and demo:
        raise RunError(
            f"数据库 {req.db} 是示例数据（{config.DEMO_LABEL}）的数据库，真实数据请用另一个数据库 "
            "the database holds the synthetic sample: screen real data into another --db"
        )


def _check_township(
    con: duckdb.DuckDBPyConnection, req: RunRequest, specs: dict[str, contract.SourceSpec]
) -> None:
    """A --township that no roster in force at the period names is refused. The stored
    roster answers at once; only a name it lacks makes us read the period's roster file,
    which may bring a new township."""
    if req.township is None:
        return
    known = db_roster.roster_townships(con, req.period)
    if req.township in known:
        return
    known = sorted(set(known) | set(_inbox_townships(req, specs)))
    if req.township not in known:
        raise RunError(
            f"未知的乡镇 unknown township {req.township!r}; "
            f"最接近的 nearest: {nearest(req.township, known) or '—'}"
        )


def _check_delivered(
    con: duckdb.DuckDBPyConnection, req: RunRequest, specs: dict[str, contract.SourceSpec]
) -> None:
    """A month with no file in its folder and nothing of it stored was not delivered:
    screening it would only re-label last month's data as this month's."""
    if has_data_files(req.inbox, req.period, specs) or db_deliveries.stored_any(con, req.period):
        return
    folder = Path(req.inbox) / req.period
    raise RunError(
        f"{folder} 中没有任何数据文件，本期也没有已入库的数据：本月尚未报送 nothing was "
        f"delivered for {req.period}: no data file in {folder} (files in subfolders are not "
        "read) and none stored"
    )


def _inbox_townships(req: RunRequest, specs: dict[str, contract.SourceSpec]) -> list[str]:
    found = discover(req.inbox, req.period, {"roster": specs["roster"]})["roster"]
    if found.path is None:
        return []
    good = read_guarded(found.path, specs["roster"], req.period).good
    if good is None or "township" not in good.columns:
        return []
    return good["township"].drop_nulls().unique().to_list()


def _record_inputs(con: duckdb.DuckDBPyConnection, run_id: str, inputs: list[SourceResult]) -> None:
    files: list[dict[str, object]] = [
        {
            "source": r.source,
            "file": r.file,
            "sha256": r.sha256,
            "status": r.status,
            "kept_file": r.kept_file,
        }
        for r in inputs
    ]
    db_runs.record_inputs(con, run_id, files)


# ---------------------------------------------------------------- test seam


def after_stage(name: str) -> None:
    """The crash tests' seam: called with a name from `STAGES` after each stage of
    `run_period` (and at "store" inside `publish_run`). It does nothing; a test replaces it
    (this module's attribute) with a function that raises or pauses, to make a run die at a
    known point (docs/reliability.md)."""


# ---------------------------------------------------------------- the stages


def prepare(req: RunRequest) -> None:
    """Everything that can be checked before a run is recorded: a wrong period, a bad
    parameters or aliases file, a missing inbox folder stop here and leave no trace."""
    check_period(req.period)
    specs = contract.load(req.aliases_file)
    parameters = params.load(req.params_file)
    parameters.at(req.period)
    parameters.ingest_limits(req.period)
    accepted_sources(req, specs)
    folder = Path(req.inbox) / req.period
    if not folder.is_dir():
        raise RunError(
            f"收件箱中没有 {req.period} 文件夹 no folder for period {req.period} in inbox "
            f"{req.inbox}"
        )
    check_one_file_per_source(discover(req.inbox, req.period, specs), folder)


def accepted_sources(req: RunRequest, specs: dict[str, contract.SourceSpec]) -> set[str]:
    """The source keys of `--accept-held`, given as keys or department names."""
    try:
        return {contract.source_key(name, specs) for name in req.accept_held}
    except contract.UnknownSource as exc:
        raise RunError(f"--accept-held: {exc}") from None


def start_run(req: RunRequest) -> str:
    """Record the run in `runs` as running, with its parameters and code version.
    Returns the run id."""
    specs = contract.load(req.aliases_file)
    resolved = params.load(req.params_file).at(req.period)
    con = connect(req.db, wait=req.busy_timeout)
    try:
        db_schema.ensure_schema(con, specs)
        # Refusals come before the run is recorded: a typo is not a failed run.
        _check_demo(con, req)
        _check_township(con, req, specs)
        _check_delivered(con, req, specs)
        with transaction(con):
            interrupted = db_runs.close_interrupted(con)
            started = dt.datetime.now().replace(microsecond=0)
            run_id = new_run_id(req.period, started)
            db_runs.record_start(
                con,
                run_id,
                req.period,
                req.township,
                started,
                resolved.provenance(),
                code_version(),
                req.demo,
            )
        leftovers = ended_work(con, req.out)
    finally:
        con.close()
    for old in leftovers:
        remove_work(req.out, old)
    for period in sorted(set(interrupted)):
        remove_staged_temps(req.out, period)
    return run_id


def ingest_inputs(req: RunRequest, run_id: str) -> list[SourceResult]:
    """Discover, read, normalise, validate, gate and store the period's files; the files and
    their hashes go into the run's row. The results come back without their frames.
    Raises `DeliveryHeld` (after storing the rest) when a completeness gate held a delivery
    that `req.accept_held` does not accept: the run must publish nothing new."""
    specs = contract.load(req.aliases_file)
    parameters = params.load(req.params_file)
    resolved = parameters.at(req.period)
    con = connect(req.db, wait=req.busy_timeout)
    try:
        results = ingest_period(
            con,
            req.inbox,
            req.period,
            specs,
            limits=parameters.ingest_limits(req.period),
            gates=resolved.gates,
            accept_held=accepted_sources(req, specs),
            run_id=run_id,
        )
        _record_inputs(con, run_id, results)
        earlier = db_deliveries.held_earlier(con, req.period)
    finally:
        con.close()
    light = [replace(r, good=None, quarantine=None, duplicates=None) for r in results]
    holding = held(results)
    if holding:
        raise DeliveryHeld(req.period, holding, light)
    if earlier.height:
        raise EarlierDeliveryHeld(
            req.period,
            [
                (r["period"], GateResult(r["source"], r["file"], r["gate"], r["measured"],
                                         r["threshold"], True))
                for r in earlier.iter_rows(named=True)
            ],
        )  # fmt: skip
    return light


def screen_period(req: RunRequest, run_id: str) -> Path:
    """Screen the period as of its inputs and leave the result in the run's work folder
    (returned). The database is only read, and closed before the rules run."""
    specs = contract.load(req.aliases_file)
    resolved = params.load(req.params_file).at(req.period)
    con = connect(req.db, read_only=True, wait=req.busy_timeout)
    try:
        # Records whose ID number reaches nobody, and whom they probably belong to: for
        # people to decide on the 身份核对 lists the publish stage writes. Linked first,
        # before the screening's inputs are loaded, so that the linkage's memory (the
        # roster and Splink's tables) is freed before theirs is taken.
        links = linkage.suggest(con, specs, req.period, resolved, run_id)
        if batches.needs_batches(con, req.period):  # exported, then screened by townships
            folder = work_dir(req.out, run_id) / batches.INPUTS_FOLDER
            inputs = batches.export_inputs(con, specs, req.period, folder, resolved.window_months)
        else:
            inputs = load_inputs(con, specs, req.period, resolved.window_months)
        previous = previously_listed(con, req.period)
        earlier = followup.load(con, req.period, resolved)
    finally:
        con.close()
    all_townships = sorted(
        inputs.population.select(pl.col("township").unique()).collect().to_series()
    )
    if req.township is not None and req.township not in all_townships:
        raise RunError(
            f"未知的乡镇 unknown township {req.township!r}; "
            f"最接近的 nearest: {nearest(req.township, all_townships)}"
        )
    result = batches.screen_in_batches(
        inputs,
        req.period,
        resolved,
        lambda part: screen(part, req.period, resolved, previous, run_id, earlier),
    )
    folder = write_work(work_dir(req.out, run_id), result, all_townships)
    linkage.write(folder, links)
    return folder


def publish_run(req: RunRequest, run_id: str, work: Path | None = None) -> Published:
    """Store the lists, evidence and match rates, publish the files and the run report and
    record the run's success: all in one transaction, so that either all of it happens or
    the lists (in the database and on disk) stay as they were. `work`: the screen stage's
    folder (by default the run's)."""
    specs = contract.load(req.aliases_file)
    resolved = params.load(req.params_file).at(req.period)
    result, all_townships = read_work(work or work_dir(req.out, run_id))
    suspects, evidence, members = outputs.for_township(result, req.township)
    mine = outputs.township_rows(req.township)
    links = linkage.read(work or work_dir(req.out, run_id)).filter(mine)
    con = connect(req.db, wait=req.busy_timeout)
    try:
        meta = PublishMeta(
            period=req.period,
            run_id=run_id,
            params=resolved,
            sources=outputs.source_statuses(con, req.period, specs, run_id),
            mask_ids=req.mask_ids,
            all_townships=all_townships,
            delivery_notes=delivery_notes(db_deliveries.run_events(con, run_id)),
            demo=req.demo,
            made=_started_at(con, run_id).date(),
        )
        listed = pl.concat([suspects["household_id"], result.candidates["household_id"]])
        contacts = db_roster.household_contacts(con, req.period, listed.unique().to_list())
        with transaction(con):
            meta.list_key_secret = db_runs.list_key_secret(con)
            db_runs.store_outputs(
                con, req.period, req.township, suspects, evidence, result.match_rates
            )
            db_runs.store_followup(
                con,
                req.period,
                req.township,
                outputs.screened_households(result, run_id).filter(mine),
                result.candidates.filter(mine),
                result.scale.filter(mine),
            )
            db_linkage.store_suggestions(con, req.period, req.township, links)
            rep = outputs.build_report(
                con,
                req.period,
                run_id,
                result,
                suspects,
                resolved,
                all_townships,
                req.township,
                unrecognised_files(req.inbox, req.period, specs),
                _started_at(con, run_id),
                demo=req.demo,
            )
            db_runs.record_end(con, run_id, "success", "")
            after_stage("store")
            # The files come last: once they are renamed into place only the commit is left.
            # The report and the departments' files are staged with the lists, written with
            # them (by the same processes) and renamed into place together, so a failure
            # while making any of them leaves every file as it was.
            with StagedFiles() as staged:
                stage_departments(staged, req.out, con, meta)
                if req.township is None:
                    stage_report(staged, req.out, rep)
                written = publish.publish(
                    req.out,
                    suspects,
                    evidence,
                    members,
                    meta,
                    townships=[req.township] if req.township else None,
                    candidates=result.candidates.filter(mine),
                    contacts=contacts,
                    identity=links,
                    staged_with=staged,  # written and renamed into place with the lists
                )
    finally:
        con.close()
    return Published(result, suspects, rep, written)


def finish_run(req: RunRequest, run_id: str) -> None:
    """After a successful run: its work folder goes."""
    remove_work(req.out, run_id)


def fail_run(req: RunRequest, run_id: str, reason: str, status: str = "failed") -> bool:
    """Record the run as failed (or `held`: a completeness gate held a delivery) with its
    one-line reason and remove its work folder. Never raises (the caller is already
    handling the real failure). False when nothing was recorded: the run had already
    ended, or the database could not be written (the next run to start then closes this
    one as interrupted)."""
    remove_work(req.out, run_id)
    try:
        con = connect(req.db, wait=req.busy_timeout)
    except Exception:
        return False
    try:
        return db_runs.record_end(con, run_id, status, ids.mask_text(reason)[:500])
    except Exception:
        return False
    finally:
        con.close()


@dataclass(frozen=True)
class Stage:
    """One stage of a run after `start_run`: `call(req, run_id)` opens the database and
    closes it before it returns, and hands on only what it wrote (the work folder). `retry`:
    whether waiting can fix its failures (reading the inbox, a busy database)."""

    name: str
    label: str  # for the console's progress line
    function: str  # a function of this module, looked up at each call (tests replace it)
    retry: bool = False

    def call(self, req: RunRequest, run_id: str) -> object:
        function: Callable[[RunRequest, str], object] = globals()[self.function]
        return function(req, run_id)


# The one order of a run's stages: `run_period` and the Prefect flow (flow.py) iterate it.
RUN_STAGES = (
    Stage("ingest", "入库 ingest", "ingest_inputs", retry=True),
    Stage("screen", "筛查 screen", "screen_period"),
    Stage("publish", "发布 publish", "publish_run"),
    Stage("finish", "收尾 finish", "finish_run"),
)


def request(
    settings: config.Settings,
    period: str,
    township: str | None = None,
    accept_held: tuple[str, ...] = (),
) -> RunRequest:
    """The run the settings describe for `period` (one township's, or all), accepting the
    held deliveries of `accept_held`."""
    return RunRequest(
        db=settings.db,
        inbox=settings.require_inbox(),
        out=settings.out,
        period=period,
        params_file=settings.params_file,
        aliases_file=settings.aliases_file,
        township=township,
        mask_ids=settings.mask_ids,
        accept_held=tuple(accept_held),
        demo=settings.demo,
        busy_timeout=settings.busy_timeout,
    )


def run_period(
    *,
    db: Path,
    inbox: Path,
    out: Path,
    period: str,
    params_file: Path | None = None,
    aliases_file: Path | None = None,
    township: str | None = None,
    mask_ids: bool = False,
    on_stage: Callable[[str], None] | None = None,
    accept_held: tuple[str, ...] = (),
    demo: bool = False,
    busy_timeout: float = 0.0,
) -> RunOutcome:
    """Screen one period (or re-screen one township of it) and publish the lists. Raises
    `DeliveryHeld` when a completeness gate held a delivery that `accept_held` does not
    accept (the run is recorded `held`, nothing new is published)."""
    req = RunRequest(
        db=Path(db),
        inbox=Path(inbox),
        out=Path(out),
        period=period,
        params_file=params_file,
        aliases_file=aliases_file,
        township=township,
        mask_ids=mask_ids,
        accept_held=tuple(accept_held),
        demo=demo,
        busy_timeout=busy_timeout,
    )
    return run_request(req, on_stage=on_stage)


def run_request(req: RunRequest, on_stage: Callable[[str], None] | None = None) -> RunOutcome:
    """`run_period` for a prepared request: every stage of `RUN_STAGES` in order under the
    one-writer lock, a failure recorded with its reason."""
    stage_started = on_stage or (lambda _label: None)
    prepare(req)
    after_stage("prepare")
    results: dict[str, object] = {}
    with lock.hold(req.db):
        run_id = start_run(req)
        try:
            after_stage("start")
            for stage in RUN_STAGES:
                stage_started(stage.label)
                results[stage.name] = stage.call(req, run_id)
                after_stage(stage.name)
        except BaseException as exc:
            fail_run(req, run_id, one_line(exc), run_status(exc))
            raise
    done = cast(Published, results["publish"])
    ingested = cast(list[SourceResult], results["ingest"])
    return RunOutcome(
        run_id,
        req.period,
        req.township,
        done.result,
        done.suspects,
        ingested,
        done.report,
        done.written,
    )


def _started_at(con: duckdb.DuckDBPyConnection, run_id: str) -> dt.datetime:
    started = db_runs.started_at(con, run_id)
    if started is None:
        raise RunError(f"数据库中没有批次 {run_id} run is not recorded in the database")
    return started
