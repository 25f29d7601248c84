"""Numbers beyond what a database column holds, through the library on both backends: a clear
``ValueError`` or "not found", never an ``OverflowError`` from the SQLite driver or a server
error half-way through."""

from __future__ import annotations

import pytest

from cleanup_core import RunNotFoundError, track_run
from cleanup_core.reports import runs_page

BEYOND_64_BITS = [2**63, 10**20, -(2**63) - 1]


@pytest.mark.parametrize("run_id", BEYOND_64_BITS)
def test_run_ids_no_column_can_hold_name_no_run(service, runs, run_id):
    runs.add()
    assert service.cleanup_run(run_id) is False
    assert service.revert_cleanup(run_id) is False
    assert service.run_status(run_id) is None
    assert service.history(run_id=run_id).total == 0
    with pytest.raises(RunNotFoundError):
        service.delete_runs([run_id], confirm=True)


@pytest.mark.parametrize("offset", [2**63, 10**20])
def test_a_history_offset_beyond_any_row_is_a_value_error(service, runs, offset):
    service.cleanup_run(runs.add())
    with pytest.raises(ValueError, match="offset must be from 0 to 9223372036854775807"):
        service.history(offset=offset)
    assert service.history(offset=2**62).events == ()


@pytest.mark.parametrize("page_number", [2**63, 10**20])
def test_a_runs_page_beyond_any_row_is_a_value_error(service, runs, page_number):
    runs.add()
    with pytest.raises(ValueError, match="page must be from 1 to"):
        runs_page(service, page=page_number)
    assert runs_page(service, page=2**40).rows == []


@pytest.mark.parametrize("extracted", [2**31, 10**30])
def test_progress_beyond_a_counter_column_is_refused_before_anything_is_written(
    service, runs, extracted
):
    with track_run("Kerala eTenders", service=service) as run:
        run.progress(extracted=3)
        with pytest.raises(ValueError, match="extracted must be a whole number from 0 to"):
            run.progress(extracted=extracted)
        with pytest.raises(ValueError, match="skipped must be a whole number from 0 to"):
            run.progress(skipped=extracted)
        run.progress(skipped=2**31 - 1)
    row = runs.get(run.run_id)
    assert (row["extracted_total_tenders"], row["skipped_existing_total"]) == (3, 2**31 - 1)
    assert row["status"] == "completed"


@pytest.mark.parametrize(
    "value",
    [10**400, 10**5000, "1e400", float("inf"), float("nan"), "-inf"],
    ids=["10**400", "10**5000", "1e400", "inf", "nan", "-inf"],
)
def test_a_tender_amount_no_column_can_hold_is_refused_before_anything_is_written(
    service, runs, value
):
    with track_run("Kerala eTenders", service=service) as run:
        with pytest.raises(ValueError, match="value_inr must be a finite number"):
            run.add_tenders([{"tender_id": "T1", "value_inr": value}])
        run.add_tenders([{"tender_id": "T2", "value_inr": 1e15}])
    assert runs.count("tenders") == 1
    assert runs.get(run.run_id)["extracted_total_tenders"] == 1
