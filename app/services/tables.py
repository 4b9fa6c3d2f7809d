"""Result tables and parallel-coordinates rows of a sweep: one query each, aggregated in Python."""

import csv
import io
import math
import statistics
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Run, RunStatus
from app.schemas import ParallelRow, RunSpec, SummaryMetric, SweepParallel, SweepTable, TableCell
from app.services import planning
from app.services.errors import Unprocessable
from app.services.sweeps import accepted_config, get_sweep, metric_value


def _sort_key(value: Any) -> tuple[int, Any]:
    # Numbers in numeric order, then anything else by its text.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value))


def _check_field(name: str, what: str) -> None:
    if name not in RunSpec.model_fields:
        raise Unprocessable(
            f"{what} must be a run-spec field ({', '.join(RunSpec.model_fields)}), not {name!r}",
            loc=("query", what),
        )


def sweep_table(
    *, session: Session, sweep_id: int, rows: str | None, cols: str | None, metric: SummaryMetric | None
) -> SweepTable:
    sweep = get_sweep(session=session, sweep_id=sweep_id)
    config = accepted_config(sweep)
    varying = planning.varying_parameters(config)
    rows = rows or (varying[0] if varying else None)
    if rows is None:
        raise Unprocessable("the sweep varies no parameter: name one with `rows`", loc=("query", "rows"))
    if cols is None and len(varying) > 1 and rows == varying[0]:
        cols = varying[1]
    _check_field(rows, "rows")
    if cols is not None:
        _check_field(cols, "cols")
        if cols == rows:
            raise Unprocessable("rows and cols must be different parameters", loc=("query", "cols"))
    metric = metric or config.metric.name

    value = metric_value(metric)
    query = select(Run.spec[rows], Run.spec[cols] if cols else Run.id, value).where(
        Run.sweep_id == sweep_id, Run.status == RunStatus.succeeded.value, value.is_not(None)
    )
    groups: dict[tuple[Any, Any], list[float]] = defaultdict(list)
    for row_value, col_value, metric_val in session.execute(query):
        groups[(row_value, col_value if cols else None)].append(metric_val)

    cells = [
        TableCell(
            row=row_value,
            col=col_value,
            mean=statistics.fmean(values),
            std=statistics.stdev(values) if len(values) > 1 else None,
            n=len(values),
        )
        for (row_value, col_value), values in sorted(
            groups.items(), key=lambda item: (_sort_key(item[0][0]), _sort_key(item[0][1]))
        )
    ]
    return SweepTable(
        sweep_id=sweep_id,
        metric=metric,
        rows=rows,
        cols=cols,
        row_values=sorted({cell.row for cell in cells}, key=_sort_key),
        col_values=sorted({cell.col for cell in cells}, key=_sort_key) if cols else [],
        averaged_over=[name for name in varying if name not in (rows, cols)],
        cells=cells,
    )


def table_csv(table: SweepTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([table.rows, *([table.cols] if table.cols else []), "mean", "std", "n"])
    for cell in table.cells:
        std = "" if cell.std is None else cell.std
        writer.writerow([cell.row, *([cell.col] if table.cols else []), cell.mean, std, cell.n])
    return out.getvalue()


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}g}" if math.isfinite(value) else str(value)


def table_markdown(table: SweepTable) -> str:
    """A table to paste into a report: rows x cols of mean ± std, n noted where it is not the same."""
    by_pair = {(cell.row, cell.col): cell for cell in table.cells}
    counts = {cell.n for cell in table.cells}
    common_n = counts.pop() if len(counts) == 1 else None
    col_values = table.col_values if table.cols else [None]

    def render(cell: TableCell | None) -> str:
        if cell is None:
            return "–"
        text = _number(cell.mean, 4) + ("" if cell.std is None else f" ± {_number(cell.std, 2)}")
        return text if cell.n == common_n else f"{text} (n={cell.n})"

    corner = f"{table.rows} \\ {table.cols}" if table.cols else table.rows
    header = [corner, *(str(value) for value in col_values)] if table.cols else [corner, table.metric.value]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row_value in table.row_values:
        cells = [render(by_pair.get((row_value, col_value))) for col_value in col_values]
        lines.append("| " + " | ".join([str(row_value), *cells]) + " |")
    note = f"{table.metric.value}, mean ± std (ddof=1)"
    if common_n is not None:
        note += f" over n = {common_n} runs per cell"
    if table.averaged_over:
        note += f", averaged over {', '.join(table.averaged_over)}"
    return "\n".join([*lines, "", note + "."]) + "\n"


def sweep_parallel(*, session: Session, sweep_id: int, metric: SummaryMetric | None) -> SweepParallel:
    sweep = get_sweep(session=session, sweep_id=sweep_id)
    config = accepted_config(sweep)
    metric = metric or config.metric.name
    names = list(config.parameters)
    rows = session.execute(
        select(Run.id, Run.spec, metric_value(metric))
        .where(Run.sweep_id == sweep_id, Run.status == RunStatus.succeeded.value)
        .order_by(Run.id)
    )
    data = [
        ParallelRow(run_id=run_id, params={n: spec.get(n) for n in names}, value=v)
        for run_id, spec, v in rows
    ]
    return SweepParallel(sweep_id=sweep_id, metric=metric, parameters=names, data=data)
