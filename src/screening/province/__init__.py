"""A province (or prefecture): many counties screened as one Prefect flow on a Dask cluster.

    province.yaml ─► config.py ─► flow.py: one task per county on a Dask worker
                                   │  county.py: the county's own run (pipeline.run), then
                                   │  what the province reads of it (a few counts, small
                                   │  tables copied to <province out>/counties/<county>/)
                                   ▼
                     rollup.py: <province out>/<P>/province_summary.parquet,
                                <province out>/province.duckdb (views, db/province.py),
                                <province out>/<P>/run-report.html (report.py)
                     schedule.py: the monthly deployment and the crontab line

Each county keeps its own database, lock, inbox and output folder, and publishes exactly
what `screening run` would; one county's failure does not stop the others. Importing this
package imports nothing heavy.
"""
