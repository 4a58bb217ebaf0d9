"""Large output must not freeze the UI: a million lines stream while keys are handled."""

from __future__ import annotations

import asyncio

from sessions.journal import events as ev
from tests.tui.conftest import wait_for
from tests.tui.test_actions import modal, select
from tui.widgets.modals import NoteModal

TOTAL = 1_000_000
CHUNK = 1_000
# The producer yields this long between chunks, so ~2 s of stream remain after the key press:
# a UI starved by the stream still misses that; a busy CI machine does not.
PACE_S = 0.002


class TestStreaming:
    async def test_a_million_lines_stream_while_keys_are_handled(self, make_app):
        app = make_app()
        async with app.run_test(size=(100, 32)) as pilot:
            screen = await select(pilot, "MINI-001")
            session = app.session
            session.record(ev.StepStarted("run-big", "MINI-001", 1, ("local",), "seq 1 1000000"))
            produced = 0

            async def produce() -> None:
                """What the engine does for a chatty command: one journaled chunk per read."""
                nonlocal produced
                for start in range(1, TOTAL + 1, CHUNK):
                    data = "\n".join(map(str, range(start, start + CHUNK))) + "\n"
                    session.record_output(ev.OutputChunk("run-big", "local", "stdout", data))
                    produced = start + CHUNK - 1
                    await asyncio.sleep(PACE_S)

            producer = asyncio.create_task(produce())
            await wait_for(pilot, lambda: produced >= 50_000, what="the stream to be under way")
            await pilot.press("n")
            await modal(pilot, NoteModal)
            handled_at = produced
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is screen, what="back on the main screen")
            await pilot.press("down")  # the tree still moves
            await producer
            session.record(ev.HostFinished("run-big", "local", "succeeded", 0))
            session.record(ev.StepFinished("run-big", "succeeded"))
            log = screen.output.log_for("local")
            await wait_for(pilot, lambda: screen.output.lines_flushed >= TOTAL + 2, what="every line flushed")
            assert handled_at < TOTAL, "the key was only handled after the stream ended"
            assert log.line_count <= screen.output.max_lines
            assert "1000000" in log.lines[-3:]
            assert str(TOTAL - screen.output.max_lines + 10) in log.lines
            assert screen.output.flushes > 3
            assert session.state.runs["run-big"].hosts["local"].output_bytes == sum(
                len(str(i)) + 1 for i in range(1, TOTAL + 1))


class TestFullLogStaysLive:
    async def test_a_run_after_a_full_log_is_drawn(self, make_app):
        """Once a host's log holds max_lines, the next run's heading and outcome must reach the
        screen (Textual's Log refreshed only the pre-prune rows: the old "succeeded" stayed)."""
        from tests.tui.conftest import screen_text

        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await select(pilot, "MINI-001")
            session = app.session
            session.record(ev.StepStarted("run-big", "MINI-001", 1, ("local",), "seq 1 20000"))
            session.record_output(ev.OutputChunk("run-big", "local", "stdout",
                                                 "".join(f"{i}\n" for i in range(1, 20001))))
            session.record(ev.HostFinished("run-big", "local", "succeeded", 0))
            session.record(ev.StepFinished("run-big", "succeeded"))
            await wait_for(pilot, lambda: "20000" in screen_text(app), what="the tail drawn")
            session.record(ev.StepStarted("run-fail", "MINI-001", 1, ("local",), "false"))
            session.record(ev.HostFinished("run-fail", "local", "failed", 1))
            session.record(ev.StepFinished("run-fail", "failed"))
            log = screen.output.log_for("local")
            await wait_for(pilot, lambda: "failed" in log.lines[-1], what="the failure written")
            await pilot.pause(0.2)
            assert "failed · exit 1" in screen_text(app)
            # the bug itself: a write to a full log, scrolled to the end, repainted only rows below
            # the screen; the rows on screen must be repainted.
            log.scroll_end(animate=False, immediate=True)
            await pilot.pause(0.05)
            assert log.line_count == screen.output.max_lines and log.is_vertical_scroll_end
            repaints: list[tuple] = []
            refresh = log.refresh

            def spy(*regions, **kw):
                repaints.append(regions)
                return refresh(*regions, **kw)

            log.refresh = spy
            log.write_lines(["── next run ──"])
            assert () in repaints, f"a full log was written without repainting what is on screen: {repaints}"


class TestHorizontalRange:
    async def test_with_wrap_off_the_scroll_range_fits_the_widest_line_in_cells(self, make_app):
        """The widest line is measured on the loop (Textual's thread worker held the GIL against
        it during a flood): an ASCII line by its length, a wide or tabbed one by its cells."""
        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            screen = await select(pilot, "MINI-001")
            screen.output.toggle_wrap()
            session = app.session
            session.record(ev.StepStarted("run-wide", "MINI-001", 1, ("local",), "cat wide"))
            session.record_output(ev.OutputChunk("run-wide", "local", "stdout", "short\n" + "x" * 150 + "\n"))
            log = await wait_for(pilot, lambda: screen.output.log_for("local"), what="the host's tab")
            await wait_for(pilot, lambda: log.virtual_size.width >= 150, what="the ASCII line measured")
            assert log.virtual_size.width < 160
            session.record_output(ev.OutputChunk("run-wide", "local", "stdout", "界" * 100 + "\n"))
            await wait_for(pilot, lambda: log.virtual_size.width >= 200, what="double-width cells counted")
            session.record_output(ev.OutputChunk("run-wide", "local", "stdout", "\t" * 30 + "end\n"))
            await wait_for(pilot, lambda: log.virtual_size.width >= 243, what="tabs expanded")
