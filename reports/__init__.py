"""Manager reports: KPIs, exports, Erlang C staffing, synthetic history.

- ``reports.kpi.compute(engine, start, end, ...) -> reports.model.Report``: every figure,
  aggregated in SQL (SQLite and PostgreSQL); ``reports.definitions.DEFINITIONS`` publishes
  what each KPI means.
- Writers: ``reports.html.render_html``, ``reports.xlsx.render_xlsx``,
  ``reports.csv_out.render_csv_zip``, ``reports.pdf.render_pdf``; charts in ``reports.charts``.
- ``reports.cli``: ``tongdai report --from --to --format html|xlsx|csv|pdf``.
- ``reports.staffing``: Erlang C (``tongdai staffing``); ``reports.synth``: synthetic history.

Nothing is imported here, so ``tongdai staffing`` does not load the database or matplotlib.
"""
