import json
import os
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleanup_core.checkpoints import (
    CheckpointStatus,
    checkpoint_path,
    inspect_checkpoint,
    portal_slug,
    read_checkpoint,
    write_checkpoint,
)

LIMIT = 1024 * 1024


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Assam Tenders", "assam_tenders"),
        ("../../etc", "etc"),
        ("  M.P. e-Procurement (GePNIC)  ", "m_p_e_procurement_gepnic"),
        ("CPPP__Central", "cppp_central"),
        ("a/b\\c", "a_b_c"),
        ("", ""),
    ],
)
def test_slug_follows_the_documented_rule(name, slug):
    assert portal_slug(name) == slug


def test_names_without_ascii_letters_get_distinct_hashed_slugs():
    hindi, marathi = portal_slug("मध्य प्रदेश"), portal_slug("महाराष्ट्र")
    assert hindi.startswith("portal_") and marathi.startswith("portal_")
    assert hindi != marathi


def test_very_long_names_are_shortened_but_stay_distinct():
    a, b = portal_slug("x" * 500 + "a"), portal_slug("x" * 500 + "b")
    assert len(a) <= 100 and len(b) <= 100 and a != b


@given(st.text(max_size=300))
def test_checkpoint_path_never_leaves_the_folder(name):
    folder = Path("/srv/checkpoints")
    path = checkpoint_path(folder, name)
    if path is not None:
        assert path.parent == folder
        assert (
            path.name.endswith(".json") and "/" not in path.name and not path.name.startswith(".")
        )


def write_raw(folder: Path, portal: str, content: bytes | str) -> Path:
    path = checkpoint_path(folder, portal)
    data = content.encode() if isinstance(content, str) else content
    path.write_bytes(data)
    return path


def test_missing_checkpoint(tmp_path):
    info = inspect_checkpoint(tmp_path, "Assam Tenders", max_bytes=LIMIT)
    assert info.status is CheckpointStatus.MISSING
    assert not info.has_data and not info.status.is_problem


def test_object_with_tenders_run_id_and_cursor(tmp_path):
    content = {
        "run_id": 7,
        "cursor": {"organisations_done": ["PWD"]},
        "updated_at": "x",
        "tenders": [{"tender_id": "2026_PWD_1"}, {"tender_id": "2026_PWD_2"}],
    }
    write_raw(tmp_path, "Assam Tenders", json.dumps(content))
    info = inspect_checkpoint(tmp_path, "Assam Tenders", max_bytes=LIMIT)
    assert info.status is CheckpointStatus.OK
    assert (info.tender_count, info.run_id) == (2, 7)
    assert info.cursor == {"organisations_done": ["PWD"]}
    assert info.is_evidence_for(7)
    assert not info.is_evidence_for(8), "a checkpoint naming another run is not evidence"


def test_bare_list_is_evidence_for_any_run_of_the_portal(tmp_path):
    write_raw(tmp_path, "Assam Tenders", '[{"tender_id": "a"}]')
    info = inspect_checkpoint(tmp_path, "Assam Tenders", max_bytes=LIMIT)
    assert info.tender_count == 1 and info.run_id is None
    assert info.is_evidence_for(1) and info.is_evidence_for(2)


def test_empty_tenders_list_is_not_evidence(tmp_path):
    write_raw(tmp_path, "Assam Tenders", '{"run_id": 3, "tenders": []}')
    info = inspect_checkpoint(tmp_path, "Assam Tenders", max_bytes=LIMIT)
    assert info.status is CheckpointStatus.OK and not info.has_data


@pytest.mark.parametrize(
    ("content", "status"),
    [
        ('{"tenders": [1, 2', CheckpointStatus.CORRUPT),
        (b"\xff\xfe\x00garbage", CheckpointStatus.CORRUPT),
        ("[" * 100_000 + "]" * 100_000, CheckpointStatus.CORRUPT),
        ('"just a string"', CheckpointStatus.UNRECOGNISED),
        ("42", CheckpointStatus.UNRECOGNISED),
        ("null", CheckpointStatus.UNRECOGNISED),
        ('{"data": [1, 2, 3]}', CheckpointStatus.UNRECOGNISED),
        ('{"tenders": {"a": 1}}', CheckpointStatus.UNRECOGNISED),
        ('{"run_id": "seven", "tenders": [1]}', CheckpointStatus.UNRECOGNISED),
        ('{"run_id": true, "tenders": [1]}', CheckpointStatus.UNRECOGNISED),
        ('{"tenders": [' + "9" * 5000 + "]}", CheckpointStatus.CORRUPT),
    ],
)
def test_unusable_content_is_a_problem_not_an_absence(tmp_path, content, status):
    write_raw(tmp_path, "Assam Tenders", content)
    info = inspect_checkpoint(tmp_path, "Assam Tenders", max_bytes=LIMIT)
    assert info.status is status
    assert info.status.is_problem and info.detail


def test_oversized_file_is_not_read(tmp_path):
    write_raw(tmp_path, "Assam Tenders", json.dumps({"tenders": ["x" * 100] * 50}))
    info = inspect_checkpoint(tmp_path, "Assam Tenders", max_bytes=1000)
    assert info.status is CheckpointStatus.OVERSIZED
    assert "limit" in info.detail


def test_link_out_of_the_folder_is_not_followed(tmp_path):
    secret = tmp_path / "outside.json"
    secret.write_text('{"tenders": [1, 2, 3]}')
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    checkpoint_path(folder, "Assam Tenders").symlink_to(secret)
    info = inspect_checkpoint(folder, "Assam Tenders", max_bytes=LIMIT)
    assert info.status is CheckpointStatus.UNSAFE
    assert info.tender_count == 0
    assert read_checkpoint(folder, "Assam Tenders", max_bytes=LIMIT).tenders == []


def test_link_inside_the_folder_is_followed(tmp_path):
    (tmp_path / "real.json").write_text('{"tenders": [1]}')
    checkpoint_path(tmp_path, "Assam Tenders").symlink_to(tmp_path / "real.json")
    assert inspect_checkpoint(tmp_path, "Assam Tenders", max_bytes=LIMIT).tender_count == 1


def test_a_directory_or_fifo_is_unreadable_and_never_blocks(tmp_path):
    checkpoint_path(tmp_path, "Dir Portal").mkdir()
    os.mkfifo(checkpoint_path(tmp_path, "Fifo Portal"))
    assert (
        inspect_checkpoint(tmp_path, "Dir Portal", max_bytes=LIMIT).status
        is CheckpointStatus.UNREADABLE
    )
    assert (
        inspect_checkpoint(tmp_path, "Fifo Portal", max_bytes=LIMIT).status
        is CheckpointStatus.UNREADABLE
    )


def test_permission_denied_is_unreadable(tmp_path, monkeypatch):
    # These tests may run as root, who can read any file; make open() refuse as it would a user.
    write_raw(tmp_path, "Assam Tenders", '{"tenders": [1]}')

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    info = inspect_checkpoint(tmp_path, "Assam Tenders", max_bytes=LIMIT)
    assert info.status is CheckpointStatus.UNREADABLE
    assert info.detail == "Permission denied"


def test_inspection_sees_a_rewritten_file(tmp_path):
    write_checkpoint(tmp_path, "Assam Tenders", tenders=[1], run_id=1)
    assert inspect_checkpoint(tmp_path, "Assam Tenders", max_bytes=LIMIT).tender_count == 1
    write_checkpoint(tmp_path, "Assam Tenders", tenders=[1, 2, 3], run_id=1)
    assert inspect_checkpoint(tmp_path, "Assam Tenders", max_bytes=LIMIT).tender_count == 3


def test_write_then_read_round_trip(tmp_path):
    folder = tmp_path / "new" / "folder"
    tenders = [{"tender_id": "2026_PWD_26485_1", "title": "Road work, ब्लॉक 4"}]
    path = write_checkpoint(
        folder,
        "Assam Tenders",
        tenders=tenders,
        run_id=5,
        cursor={"organisation": "PWD", "page": 3},
        updated_at="2026-11-28",
    )
    assert path == folder / "assam_tenders.json"
    checkpoint = read_checkpoint(folder, "Assam Tenders", max_bytes=LIMIT)
    assert checkpoint.tenders == tenders
    assert checkpoint.cursor == {"organisation": "PWD", "page": 3}
    assert checkpoint.info.run_id == 5
    assert [p.name for p in folder.iterdir()] == ["assam_tenders.json"], "no temp files left"


def test_readers_never_see_a_torn_checkpoint(tmp_path):
    """A reader polling while a writer rewrites a large checkpoint sees only whole files."""
    stop = threading.Event()
    seen: list[CheckpointStatus] = []

    def read_loop():
        while not stop.is_set():
            checkpoint = read_checkpoint(tmp_path, "Assam Tenders", max_bytes=64 * LIMIT)
            seen.append(checkpoint.info.status)
            if checkpoint.info.status is CheckpointStatus.OK:
                assert len(checkpoint.tenders) in {1000 * n for n in range(1, 21)}

    write_checkpoint(tmp_path, "Assam Tenders", tenders=[{"i": 0}] * 1000)
    reader = threading.Thread(target=read_loop)
    reader.start()
    try:
        for n in range(1, 21):
            write_checkpoint(
                tmp_path,
                "Assam Tenders",
                tenders=[{"i": i, "pad": "x" * 50} for i in range(1000 * n)],
            )
    finally:
        stop.set()
        reader.join()
    assert seen and set(seen) == {CheckpointStatus.OK}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
@given(content=st.binary(max_size=2000))
def test_random_bytes_never_raise(tmp_path, content):
    write_raw(tmp_path, "Fuzz", content)
    info = inspect_checkpoint(tmp_path, "Fuzz", max_bytes=LIMIT)
    assert info.status in set(CheckpointStatus)
    assert info.status is not CheckpointStatus.MISSING
