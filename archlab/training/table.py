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

    results: list  # TrainResult

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
        from archlab.models import is_model, model_card

        rows = []
        for r in self.results:
            lecture = model_card(r.model).lecture_accuracy if is_model(r.model) else None
            rows.append(
                [
                    r.model,
                    r.config.recipe,
                    f"{r.params:,}",
                    f"{r.iterations:,}",
                    f"{r.seconds:.1f} s",
                    f"{r.eval_seconds:.1f} s",
                    f"{100 * r.test_accuracy:.2f}%",
                    f"{lecture}%" if lecture is not None else "-",
                ]
            )
        return rows

    def _parts(self) -> list[Table | str]:
        return [Table(self._HEADERS, self._rows())]
