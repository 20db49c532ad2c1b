"""The ``gridcollect`` command line."""
from __future__ import annotations

import json
import os
import sys
import time

import click

from .checks import Context
from .filecheck import check_files
from .grids import Grid, GridFileError, is_grid_code, is_prefix, load_geojson
from .standards import RECORD_TYPES, StandardError, load_standards
from .tabular import FileError, file_format

USAGE_ERROR = 2


class Progress:
    """Rows validated so far, on stderr, at most once a second, after the first."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.started = self.shown = time.monotonic()
        self.tty = stream.isatty()

    def __call__(self, rows):
        now = time.monotonic()
        if now - self.shown < 1:
            return
        self.shown = now
        rate = rows / (now - self.started)
        end = "\r" if self.tty else "\n"
        self.stream.write(f"validated {rows:,} rows ({rate:,.0f} rows/s){end}")
        self.stream.flush()

    def finish(self):
        if self.tty and self.shown != self.started:
            self.stream.write("\n")


def _message(exc) -> str:
    return exc.message if isinstance(exc, click.UsageError) else str(exc)


def _printable(line: str) -> str:
    """A report line with control characters escaped: a cell cannot forge lines."""
    if line.isprintable():
        return line
    return "".join(c if c.isprintable() or c in " \u3000" else ascii(c)[1:-1] for c in line)


@click.group()
@click.version_option(package_name="gridcollect")
def main():
    """gridcollect: grid-based community data collection (网格化管理)."""


@main.command()
@click.argument("files", nargs=-1, required=True)
@click.option("--type", "record_type", required=True, type=click.Choice(RECORD_TYPES),
              help="Record type of every row.")
@click.option("--grid", "grid_code", metavar="CODE",
              help="Grid cell (15 digits) or prefix: applies its overlays and grid rules.")
@click.option("--grids", "grids_file", type=click.Path(exists=True, dir_okay=False),
              help="GeoJSON of grid cells: with --grid, locations must lie inside that cell.")
@click.option("--standards", "standards_dir", type=click.Path(file_okay=False),
              help="A field_standards folder (default: the bundled standards).")
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Report format on stdout.")
@click.option("--jobs", type=click.IntRange(1, 64), default=None,
              help="Worker processes for big files (default: one per core).")
def validate(files, record_type, grid_code, grids_file, standards_dir, output, jobs):
    """Validate CSV, XLSX, JSON or JSON Lines FILES against the field standards.

    Exit status: 0 every row valid, 1 some rows invalid, 2 usage or file error.
    """
    out = click.get_text_stream("stdout", errors="backslashreplace")  # lone surrogates too
    counts = {"total": 0, "valid": 0, "invalid": 0}
    try:
        for path in files:
            if not os.path.isfile(path):
                raise FileError(f"{path}: " + ("not a file" if os.path.exists(path)
                                               else "no such file"))
            file_format(path)
        standards = load_standards(standards_dir)
        if grid_code is not None and not is_prefix(grid_code):
            raise click.UsageError(f"--grid must be a grid code or prefix of 6, 9, 12 or 15 "
                                   f"digits, not {grid_code!r}")
        standard = standards.effective(record_type, grid_code)
        grid = Grid(grid_code) if grid_code and is_grid_code(grid_code) else None
        if grids_file is not None:
            if grid is None:
                raise click.UsageError("--grids needs --grid with a 15-digit grid code")
            grid = load_geojson(grids_file).get(grid_code)
            if grid is None:
                raise click.UsageError(f"grid {grid_code} is not in {grids_file}")
    except (StandardError, FileError, GridFileError, click.UsageError) as exc:
        if output == "json":  # a machine reading stdout gets JSON whatever happens
            out.write(json.dumps({**counts, "rows": [], "error": _message(exc)},
                                 ensure_ascii=False) + "\n")
        raise click.UsageError(_message(exc)) from None
    progress = Progress()
    try:
        if output == "json":
            out.write('{"rows": [')
        for result in check_files(files, standard, Context(grid), jobs, progress):
            counts["total"] += 1
            counts["valid" if result.valid else "invalid"] += 1
            if output == "json":
                out.write(("" if counts["total"] == 1 else ",\n")
                          + json.dumps(result.as_dict(), ensure_ascii=False))
            else:
                for error in result.errors:
                    out.write(_printable(f"{result.file}:{result.row}: {error.field or '-'} "
                                         f"[{error.code}] {error.message}") + "\n")
    except BrokenPipeError:  # e.g. | head: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1 if counts["invalid"] else 0)
    except FileError as exc:
        if output == "json":  # keep stdout valid JSON
            out.write("], " + json.dumps({**counts, "error": str(exc)}, ensure_ascii=False)[1:]
                      + "\n")
        out.flush()
        click.echo(f"Error: {exc}", err=True)
        sys.exit(USAGE_ERROR)
    finally:
        progress.finish()
    if output == "json":
        out.write("], " + json.dumps(counts)[1:] + "\n")
    else:
        out.write(f"{counts['total']} rows: {counts['valid']} valid, "
                  f"{counts['invalid']} invalid (standard {standard.record_type} "
                  f"{standard.version})\n")
    sys.exit(1 if counts["invalid"] else 0)
