"""Command palette (ctrl+p): the screen's actions, jump to a task, run a given step.

Built from the current state each time the palette opens, so statuses are fresh.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui import format as fmt

if TYPE_CHECKING:
    from tui.screens.main import MainScreen


class RunbookCommands(Provider):
    """Hits for the main screen (nothing on other screens)."""

    def _main(self) -> MainScreen | None:
        from tui.screens.main import MainScreen

        screen = self.screen
        return screen if isinstance(screen, MainScreen) else None

    def _commands(self) -> Iterator[tuple[str, str, Any]]:
        main = self._main()
        if main is None:
            return
        for binding in main.BINDINGS:
            if not isinstance(binding, Binding) or binding.action in ("jump",):
                continue
            key = binding.key_display or binding.key.split(",")[0]
            yield f"{binding.description} ({key})", binding.tooltip, partial(main.run_action, binding.action)
        state = main.state
        for item in main.task_tree.items.values():
            if item.kind == "task":
                status = state.task_status(item.id)
                text = f"Jump to {item.id}: {item.title}"
                yield text, f"{fmt.icon(status)} {fmt.word(status)}", partial(main.jump_to, item.id)
            else:
                yield f"Jump to {item.title}", item.id, partial(main.jump_to, item.id)
        for item in main.task_tree.items.values():
            for step in item.steps:
                if not step.runnable:
                    continue
                status = state.step_status(item.id, step.number)
                yield (
                    f"Run {item.id} step {step.number}: {step.title}",
                    f"{fmt.icon(status)} {fmt.word(status)} · guards are asked first",
                    partial(self._run_step, main, item.id, step.number),
                )

    @staticmethod
    def _run_step(main: Any, item_id: str, step: int) -> None:
        main.jump_to(item_id)
        main.run_given_step(item_id, step)

    async def discover(self) -> Hits:
        for text, help_text, command in self._commands():
            if text.startswith("Run ") and " step " in text:
                continue
            yield DiscoveryHit(fmt.line(text), command, text=text, help=_help(help_text))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for text, help_text, command in self._commands():
            shown = fmt.visible(text, multiline=False)
            score = matcher.match(shown)
            if score > 0:
                prompt = fmt.line(text)
                for offset in matcher.fuzzy_search.match(matcher.query, shown)[1]:
                    prompt.stylize("bold underline", offset, offset + 1)
                yield Hit(score, prompt, command, text=text, help=_help(help_text))


def _help(text: str | None) -> str | None:
    """Textual parses a hit's help as markup: document text must not be."""
    from textual.markup import escape

    return escape(fmt.visible(text, multiline=False)) if text else text
