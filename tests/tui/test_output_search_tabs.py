"""A search stays active on output tabs that appear after it (a new host, the all-hosts view)."""

from __future__ import annotations

from tests.tui.conftest import MINI, wait_for
from tests.tui.test_actions import select
from tests.tui.test_window_help import fed


async def test_a_search_highlights_the_tabs_of_hosts_that_report_after_it(make_app):
    app = make_app(MINI)
    async with app.run_test(size=(100, 32)) as pilot:
        screen = await select(pilot, "MINI-001")
        await fed(pilot, screen, "web-1", "ok\nERROR on one\n")
        screen.output.search("error")
        await fed(pilot, screen, "web-2", "ERROR on two\n")
        await wait_for(pilot, lambda: screen.output.log_for("*all*") is not None, what="all-hosts view")
        for host in ("web-1", "web-2", "*all*"):
            log = screen.output.log_for(host)
            assert log.highlight and log.highlighter.pattern.pattern == "error", host
        await pilot.press("2")
        assert screen.output.active_host == "web-2"
        assert screen.output.next_match(1) == 0
