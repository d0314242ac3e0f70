"""Sign in, edit, conflict, live update, history, snapshot and restore — in a real browser."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sharedstate import SharedStore
from sharedstate.redis_server import RedisProcess
from tests.deployments import Deployment, Server, start_api, wait_serving

READ, WRITE, ADMIN = "console-read-1111", "console-write-2222", "console-admin-3333"


@pytest.fixture
def system(
    deployment: Deployment, redis_server: RedisProcess, tmp_path: Path
) -> Iterator[tuple[Server, SharedStore]]:
    deployment.start(snapshot_interval=3600, restore_check_interval=2)
    server = start_api(
        redis_server, tmp_path, SHAREDSTATE_NAMESPACE=deployment.namespace,
        SHAREDSTATE_API_TOKENS=f"read:{READ},write:{WRITE},admin:{ADMIN}",
    )  # fmt: skip
    wait_serving(server)
    store = deployment.store
    store.put("config", {"greeting": "hi", "admins": [1, 2], "limits": {"max": 10}})
    store.put("user_data", {"42": {"name": "Ada", "verified": True}, "7": {"name": "Bob"}})
    store.put("contacted", {"cluster-1": {3, 1, 2}})
    yield server, store
    server.process.terminate()
    server.process.wait(15)


def axe_critical(page: Any) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [f"{v['id']}: {v['help']}" for v in violations if v["impact"] == "critical"]


def check_screen(page: Any, shots: Path, name: str) -> None:
    assert axe_critical(page) == [], name
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / f"console-{name}.png"), full_page=True)


def sign_in(page: Any, url: str, token: str) -> None:
    page.goto(url)
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Sections").wait_for()


def test_console_end_to_end(browser: Any, system: tuple[Server, SharedStore], shots: Path) -> None:
    server, store = system
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(server.url)
    check_screen(page, shots, "signin")
    sign_in(page, server.url, ADMIN)
    assert "role admin" in page.locator("#who").inner_text()

    # the list, the tree, and the search
    page.get_by_role("button", name="config", exact=True).click()
    panel = page.locator("#docpanel")
    panel.get_by_text('"hi"').wait_for()
    assert "null" not in panel.inner_text().splitlines()  # no stray text from optional parts
    page.get_by_label("Search documents").fill("user")
    assert page.locator("#doclist tbody tr").count() == 1
    page.get_by_label("Search documents").fill("")
    check_screen(page, shots, "documents")

    # edit and save with If-Match
    panel.get_by_role("button", name="Edit").click()
    editor = page.get_by_label("Document JSON")
    editor.fill("{ not json")
    panel.get_by_text("Invalid JSON").wait_for()
    assert panel.get_by_role("button", name="Save").is_disabled()
    editor.fill(json.dumps({"greeting": "hello", "admins": [1, 2, 3]}))
    panel.get_by_role("button", name="Save").click()
    page.get_by_text(re.compile(r"Saved config as version \d+")).wait_for()
    saved = store.get("config")
    assert saved.data == {"greeting": "hello", "admins": [1, 2, 3]}
    page.get_by_text(f"Saved config as version {saved.version}").wait_for()

    # a conflict: another writer saves while we edit; nothing is overwritten
    panel.get_by_role("button", name="Edit").click()
    editor.fill(json.dumps({"greeting": "mine"}))
    theirs = store.put("config", {"greeting": "theirs", "admins": [9]})
    page.get_by_text(f"saved version {theirs} of config meanwhile").wait_for()
    panel.get_by_role("button", name="Save").click()
    conflict = page.get_by_role("region", name="Conflict")
    conflict.get_by_text(f"saved version {theirs} while you were editing version {saved.version}").wait_for()
    assert conflict.locator(".diff .add").count() >= 1 and conflict.locator(".diff .del").count() >= 1
    check_screen(page, shots, "conflict")
    assert store.get("config").data == {"greeting": "theirs", "admins": [9]}
    conflict.get_by_role("button", name="Discard mine").click()

    # a live update arrives without reloading
    live = store.set_field("config", "live", "from another service")
    page.get_by_text(f"Live: config is now version {live}").wait_for()
    panel.get_by_text('"from another service"').wait_for()

    # history and a diff between two versions
    panel.get_by_role("button", name="History").click()
    page.get_by_label("From", exact=True).select_option(str(saved.version))
    page.get_by_label("To", exact=True).select_option(str(live))
    page.get_by_role("button", name="Compare").click()
    panel.get_by_text(f"version {saved.version} → version {live}").wait_for()
    check_screen(page, shots, "history")

    # snapshot now, change, then restore it with a typed confirmation
    page.get_by_role("link", name="Snapshots").click()
    page.get_by_role("button", name="Take snapshot now").click()
    page.get_by_text("Snapshot: finished").wait_for(timeout=30_000)
    row = page.locator("tbody tr").first
    snapshot_id = row.locator("code").inner_text()
    check_screen(page, shots, "snapshots")
    store.put("config", {"greeting": "changed after the snapshot"})
    row.get_by_role("button", name=f"Restore {snapshot_id}").click()
    dialog = page.get_by_role("dialog")
    confirm = dialog.get_by_role("button", name="Restore")
    assert confirm.is_disabled()
    dialog.get_by_label("Type the snapshot id to confirm").fill(snapshot_id)
    confirm.click()
    page.get_by_text("Restore: finished").wait_for(timeout=30_000)
    page.get_by_text(re.compile(r"Restored \d+ documents from ")).wait_for()
    assert store.get("config").data == {"greeting": "theirs", "admins": [9], "live": "from another service"}

    page.get_by_role("link", name="Jobs").click()
    page.get_by_role("cell", name="snapshot", exact=True).wait_for()
    check_screen(page, shots, "jobs")
    page.get_by_role("link", name="Health").click()
    page.get_by_text("Status:").wait_for()
    assert page.get_by_role("list", name="Warnings").count() == 1  # e.g. AOF off on the test server
    check_screen(page, shots, "health")
    page.close()


def test_read_only_tokens_see_no_edit_controls(browser: Any, system: tuple[Server, SharedStore]) -> None:
    server, _ = system
    page = browser.new_page()
    sign_in(page, server.url, READ)
    page.get_by_role("button", name="config", exact=True).click()
    page.locator("#docpanel").get_by_role("button", name="History").wait_for()
    assert page.get_by_role("button", name="Edit").count() == 0
    assert page.get_by_role("button", name="Delete").count() == 0
    page.get_by_role("link", name="Snapshots").click()
    page.locator("#view h2").get_by_text("Snapshots").wait_for()
    assert page.get_by_role("button", name="Take snapshot now").count() == 0
    page.close()


def test_delete_needs_the_typed_name(browser: Any, system: tuple[Server, SharedStore]) -> None:
    server, store = system
    version = store.get("user_data").version
    page = browser.new_page()
    sign_in(page, server.url, WRITE)
    page.get_by_role("button", name="user_data", exact=True).click()
    panel = page.locator("#docpanel")
    panel.get_by_role("button", name="Delete").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Type user_data to confirm").fill("user_dat")
    assert dialog.get_by_role("button", name="Delete").is_disabled()
    dialog.get_by_role("button", name="Cancel").click()
    assert store.get("user_data").version == version  # cancelled: still there

    panel.get_by_role("button", name="Delete").click()
    dialog.get_by_label("Type user_data to confirm").fill("user_data")
    dialog.get_by_role("button", name="Delete").click()
    page.get_by_text("Deleted user_data").wait_for()
    assert "user_data" not in store.names()
    page.get_by_role("button", name="user_data", exact=True).wait_for(state="detached")  # the list reloads
    page.close()


def test_errors_are_shown_plainly(browser: Any, system: tuple[Server, SharedStore]) -> None:
    server, _ = system
    page = browser.new_page()
    page.goto(server.url)
    page.get_by_label("API token").fill("not-a-token")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").get_by_text("401 unauthorized: unknown token").wait_for()
    page.close()


def test_works_at_375_px(browser: Any, system: tuple[Server, SharedStore], shots: Path) -> None:
    server, _ = system
    page = browser.new_page(viewport={"width": 375, "height": 800})
    sign_in(page, server.url, WRITE)
    page.get_by_role("button", name="user_data", exact=True).click()
    page.locator("#docpanel").get_by_role("button", name="Edit").wait_for()
    for view in ("Documents", "Snapshots", "Jobs", "Health"):
        page.get_by_role("link", name=view).click()
        page.locator("#view h2").get_by_text(view).wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, view
    page.get_by_role("link", name="Documents").click()
    page.get_by_role("button", name="user_data", exact=True).click()
    check_screen(page, shots, "mobile")
    page.close()


def test_an_edit_of_one_field_keeps_every_other_value_exact(
    browser: Any, system: tuple[Server, SharedStore]
) -> None:
    server, store = system
    exact = {"ids": {3, 1, 2}, "snowflake": 12345678901234567890, "ratio": 1.0, "owner": "ada"}
    store.put("exact", exact)
    page = browser.new_page()
    sign_in(page, server.url, WRITE)
    page.get_by_role("button", name="exact", exact=True).click()
    panel = page.locator("#docpanel")
    panel.get_by_text("12345678901234567890").wait_for()  # the tree shows every digit, and the set
    assert "big int" in panel.inner_text() and "set {3}" in panel.inner_text()
    panel.get_by_role("button", name="Edit").click()
    editor = page.get_by_label("Document JSON")
    text = editor.input_value()
    assert '"ratio": 1.0' in text and "12345678901234567890" in text
    editor.fill(text.replace('"ada"', '"grace"'))
    panel.get_by_role("button", name="Save").click()
    page.get_by_text(re.compile(r"Saved exact as version \d+")).wait_for()
    saved = store.get("exact").data
    assert saved == {**exact, "owner": "grace"}
    assert type(saved["ids"]) is set and type(saved["ratio"]) is float
    assert saved["snowflake"] == 12345678901234567890
    page.close()
