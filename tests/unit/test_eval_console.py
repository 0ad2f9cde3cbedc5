"""The evaluation summary printed in the terminal fits 100 columns with five counselors."""

from __future__ import annotations

import io

from rich.cells import cell_len
from rich.console import Console

from theramind.evaluation.aggregate import MetricSummary
from theramind.evaluation.console import summary_table, summary_tables

COUNSELORS = ("theramind", "theramind_no_memory", "fixed_therapy", "plain", "reference")
METRICS = (
    ("therapeutic_alliance", "Therapeutic Alliance", "judge", 0.0, 3.0, True),
    ("attunement_presence", "Attunement & Presence", "judge", 0.0, 3.0, True),
    ("phq9_self_delta", "ΔPHQ-9 per session (self-report)", "outcome", -27.0, 27.0, False),
    ("sessions_to_responsive", "Sessions to responsive therapy", "outcome", 1.0, None, False),
)


def summaries() -> list[MetricSummary]:
    rows = []
    for i, counselor in enumerate(COUNSELORS):
        for metric, name, source, lo, hi, better in METRICS:
            rows.append(
                MetricSummary(
                    metric=metric,
                    name=name,
                    source=source,
                    scope="session",
                    counselor=counselor,
                    n=12,
                    scored=24,
                    missing=i % 3,
                    mean=-12.345 + i if lo < 0 else 1.5,
                    sd=1.0,
                    ci_low=-26.5 if lo < 0 else 0.0,
                    ci_high=-0.75 if lo < 0 else 3.0,
                    clipped=lo >= 0,
                    scale_min=lo,
                    scale_max=hi,
                    higher_is_better=better,
                )
            )
    return rows


def render(renderable: object, width: int = 200) -> list[str]:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text().splitlines()


def test_five_counselors_are_split_into_tables_that_fit_100_columns() -> None:
    tables = summary_tables(summaries(), title="Evaluation: runs/x")
    assert len(tables) >= 2
    seen: list[str] = []
    for table in tables:
        lines = render(table)  # a wide console: the table keeps its own width
        assert max(cell_len(line) for line in lines) <= 100
        text = "\n".join(lines)
        assert "…" not in text  # nothing cut short
        header = next(line for line in lines if "metric" in line)
        seen += [c for c in COUNSELORS if f" {c} " in f"{header} "]
        for _, name, *_ in METRICS:
            assert name.split()[0] in text
    assert seen == list(COUNSELORS)  # each counselor once, in order
    full = "\n".join(render(summary_table(summaries(), title="Evaluation: runs/x")))
    for cell in ("-12.35 [-26.50, -0.75]", "1.50 [0.00, 3.00]*", "(1 missing)", "≥1", "-27–27"):
        assert cell in full, cell
    assert "(2/2)" in full or "(3/3)" in full


def test_narrow_terminals_get_narrower_tables() -> None:
    narrow = summary_tables(summaries(), width=80)
    assert len(narrow) > len(summary_tables(summaries(), width=100))
    for table in narrow:
        assert max(cell_len(line) for line in render(table)) <= 80
