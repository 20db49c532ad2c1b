"""Whole-file validation: workers that must rebuild the standard, progress output."""
import io
import multiprocessing
import pickle

from gridcollect import Context, check_files, load_standards
from gridcollect import filecheck
from gridcollect.cli import Progress

HEADER = "id_number,name,sex,birth_date,ethnicity,residence_type\n"
ROWS = ["11010519491231002X,张三,2,1949-12-31,01,1\n", "11010519491231002X,张三,1,1949-12-31,01,1\n"]


def test_a_standard_pickles_as_its_source(standards):
    person = standards.effective("person", "420502001002003")
    assert pickle.loads(pickle.dumps(person)) is person


def test_spawned_workers_rebuild_the_standard(tmp_path, monkeypatch):
    # Windows and macOS start workers by spawning: nothing is inherited
    path = tmp_path / "people.csv"
    path.write_text(HEADER + "".join(ROWS * 20), encoding="utf-8")
    monkeypatch.setattr(filecheck, "PARALLEL_ABOVE_BYTES", 0)
    monkeypatch.setattr(filecheck, "CHUNK", 7)
    monkeypatch.setattr(filecheck.multiprocessing, "Pool",
                        multiprocessing.get_context("spawn").Pool)
    results = list(check_files([path], load_standards().effective("person"), Context(), jobs=2))
    assert [r.row for r in results] == list(range(2, 42))  # header: row 1
    assert [r.valid for r in results] == [True, False] * 20
    assert [(e.field, e.code) for e in results[1].errors] == [("sex", "sex_mismatch")]


def test_progress_reports_after_the_first_second(monkeypatch):
    clock = iter([100.0, 100.5, 101.2, 101.4, 102.5])
    monkeypatch.setattr("gridcollect.cli.time.monotonic", lambda: next(clock))
    stream = io.StringIO()
    progress = Progress(stream)      # 100.0
    progress(2000)                   # 100.5: too soon, nothing
    progress(4000)                   # 101.2: shown
    progress(6000)                   # 101.4: too soon
    progress(10000)                  # 102.5: shown
    assert stream.getvalue() == ("validated 4,000 rows (3,333 rows/s)\n"
                                 "validated 10,000 rows (4,000 rows/s)\n")
