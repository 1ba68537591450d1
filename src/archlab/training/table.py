"""The table ``archlab train`` ends with: each run against the lecture's accuracy."""

from __future__ import annotations

from dataclasses import dataclass

from archlab._table import Table, Tabular


@dataclass
class TrainSummary(Tabular):
    """Each trained run: recipe, size, time, test accuracy, and the lecture's where it has one.

    Example::

        >>> print(TrainSummary([archlab.train("dnn", epochs=1)]))  # doctest: +SKIP
    """

    results: list  # archlab.Run, one per model trained

    _HEADERS = (
        "run",
        "recipe",
        "parameters",
        "iterations",
        "training",
        "evaluating",
        "test accuracy",
        "lecture",
    )

    def _rows(self) -> list[list[object]]:
        rows = []
        for r in self.results:
            card = r.card
            lecture = card.lecture_accuracy if card is not None else None
            if r.accuracy_over:  # nine classes: not the lecture's question
                lecture = None
            acc = "-" if r.test_accuracy is None else f"{100 * r.test_accuracy:.2f}%"
            if r.test_accuracy is not None:
                acc += r.accuracy_over  # a held-out class: over the nine others
            rows.append(
                [
                    r.name,
                    r.config.recipe,
                    f"{r.params:,}",
                    f"{r.iteration:,}",
                    f"{r.seconds:.1f} s",
                    f"{r.eval_seconds:.1f} s",
                    acc,
                    f"{lecture}%" if lecture is not None else "-",
                ]
            )
        return rows

    def _parts(self) -> list[Table | str]:
        return [Table(self._HEADERS, self._rows())]
