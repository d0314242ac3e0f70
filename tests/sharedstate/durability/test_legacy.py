"""Legacy JSON files: all-or-nothing import, exact export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sharedstate import SharedStore
from sharedstate.durability import state
from sharedstate.durability.legacy import LegacyImportError, export_directory, import_directory

SEEDS = {
    "config.json": '{"greeting": "hi", "admins": [1, 2], "ratio": 1.0, "flag": true, "n": null}',
    "user_data.json": '{"42": {"name": "Ada", "joined": "2024-01-01", "score": 1e100},'
    ' "7": {"name": "Bøb ✓"}}',
    "buildings.json": '[{"id": 1, "floors": 3}, {"id": 2, "floors": 12}]',
    "interest_pool.json": "[]",
    "verification_tokens.json": '{"abc": {"expires": 1712345678.5}}',
    "contacted_ids.json": '{"cluster-1": [1, 2, 3]}',
}


def seed(directory: Path, files: dict[str, str] = SEEDS) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def test_import_then_export_round_trips_the_json_exactly(store: SharedStore, tmp_path: Path) -> None:
    report = import_directory(store, seed(tmp_path / "in"))
    assert report.documents == sorted(name[:-5] for name in SEEDS) and report.mismatched == []
    assert store.load("config") == {"greeting": "hi", "admins": [1, 2], "ratio": 1.0, "flag": True, "n": None}
    assert type(store.load("config")["ratio"]) is float
    assert state.get_marker(store) is not None
    written, skipped = export_directory(store, tmp_path / "out" / "nested")
    assert skipped == []
    assert len(written) == len(SEEDS)
    for name, text in SEEDS.items():
        exported = (tmp_path / "out" / "nested" / name).read_text(encoding="utf-8")
        assert json.loads(exported) == json.loads(text)
        assert _typed(json.loads(exported)) == _typed(json.loads(text))
        assert exported.endswith("\n")
    assert "Bøb ✓" in (tmp_path / "out" / "nested" / "user_data.json").read_text(encoding="utf-8")
    assert not [p for p in (tmp_path / "out" / "nested").iterdir() if p.name.startswith(".")]


def _typed(value: object) -> object:
    return json.dumps(value, sort_keys=True)


@pytest.mark.parametrize(
    ("bad_file", "content", "expected"),
    [
        ("broken.json", '{"a": 1,\n  "b": }', "broken.json: line 2"),
        ("nan.json", '{"a": NaN}', "NaN"),
        ("bad name.json", "{}", "invalid document name"),
        ("latin1.json", b'{"a": "\xe9"}', "latin1.json"),
    ],
)
def test_a_malformed_directory_writes_nothing(
    store: SharedStore, tmp_path: Path, bad_file: str, content: str | bytes, expected: str
) -> None:
    directory = seed(tmp_path / "in")
    if isinstance(content, bytes):
        (directory / bad_file).write_bytes(content)
    else:
        (directory / bad_file).write_text(content)
    with pytest.raises(LegacyImportError) as info:
        import_directory(store, directory)
    assert expected in str(info.value)
    assert store.names() == []
    assert store.redis.keys("*") == []


def test_oversized_and_empty_directories(store: SharedStore, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(LegacyImportError, match=r"no \*\.json files"):
        import_directory(store, tmp_path / "empty")
    small = SharedStore(store.redis, "bot", max_document_bytes=100)
    seed(tmp_path / "big", {"big.json": json.dumps({"x": "y" * 500})})
    with pytest.raises(LegacyImportError, match="over the limit"):
        import_directory(small, tmp_path / "big")
    assert store.names() == []


def test_byte_order_mark_is_accepted(store: SharedStore, tmp_path: Path) -> None:
    directory = tmp_path / "bom"
    directory.mkdir()
    (directory / "config.json").write_bytes(b'\xef\xbb\xbf{"a": 1}')
    import_directory(store, directory)
    assert store.load("config") == {"a": 1}


def test_export_renders_sets_as_sorted_lists(store: SharedStore, tmp_path: Path) -> None:
    store.put("ids", {"contacted": {3, 1, 2}})
    export_directory(store, tmp_path)
    assert json.loads((tmp_path / "ids.json").read_text()) == {"contacted": [1, 2, 3]}
