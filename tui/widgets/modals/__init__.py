"""Modal dialogs: guards, prompts and operator decisions.  Each returns its answer via dismiss()."""

from tui.widgets.modals.approval import ApprovalModal
from tui.widgets.modals.choose_host import ChooseHostModal
from tui.widgets.modals.choose_target import ChooseTargetModal, TargetChoice
from tui.widgets.modals.confirm import ConfirmModal
from tui.widgets.modals.decide_outcome import DecideOutcomeModal
from tui.widgets.modals.note import NoteModal
from tui.widgets.modals.placeholder import PlaceholderModal
from tui.widgets.modals.reason import ReasonModal
from tui.widgets.modals.rerun_hosts import RerunHostsModal
from tui.widgets.modals.search import SearchModal
from tui.widgets.modals.send_input import SendInputModal
from tui.widgets.modals.task_picker import PickerEntry, TaskPickerModal
from tui.widgets.modals.type_host import TypeHostModal

__all__ = [
    "ApprovalModal",
    "ChooseHostModal",
    "ChooseTargetModal",
    "ConfirmModal",
    "DecideOutcomeModal",
    "NoteModal",
    "PickerEntry",
    "PlaceholderModal",
    "ReasonModal",
    "RerunHostsModal",
    "SearchModal",
    "SendInputModal",
    "TargetChoice",
    "TaskPickerModal",
    "TypeHostModal",
]
