"""What comes out of a study: the best strategy (``export``), optionally chosen on fresh
samples (``reevaluate``), a CSV of its trials (``export``), its progress (``status``) and
whether the winner's lead exceeds the study's noise floor (``noise``)."""

from autonat_search.reporting.export import (
    ExportedStrategy,
    best_of_study,
    export_trials_csv,
    ranked_complete_trials,
    write_strategy_file,
)
from autonat_search.reporting.reevaluate import reevaluate_best, search_figure
from autonat_search.reporting.status import format_status, status_report

__all__ = [
    "ExportedStrategy",
    "best_of_study",
    "export_trials_csv",
    "format_status",
    "ranked_complete_trials",
    "reevaluate_best",
    "search_figure",
    "status_report",
    "write_strategy_file",
]
