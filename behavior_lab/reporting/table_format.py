"""One table, three renderings: markdown (report.md), LaTeX booktabs (papers), CSV (raw numbers).

A `Table` carries the raw numeric frame (written to CSV unchanged) and a display frame of strings
(what markdown and LaTeX show: rounded numbers, "[lo, hi]" intervals, em dashes for n/a).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "×": r"$\times$", "−": "-", "—": "---", "≥": r"$\geq$", "≤": r"$\leq$", "Δ": r"$\Delta$",
}


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def markdown_escape(text: str) -> str:
    return str(text).replace("|", r"\|").replace("\n", " ")


@dataclass
class Table:
    name: str  # file stem: <name>.md / .tex / .csv
    data: pd.DataFrame  # raw numbers (CSV)
    display: pd.DataFrame  # strings (markdown, LaTeX)
    caption: str
    align: str | None = None  # LaTeX column spec; default: l for the first column, r elsewhere
    notes: str = ""

    def to_markdown(self) -> str:
        cols = list(self.display.columns)
        align = self._align()
        lines = ["| " + " | ".join(markdown_escape(c) for c in cols) + " |",
                 "|" + "|".join(":---" if a == "l" else "---:" if a == "r" else ":---:" for a in align) + "|"]
        for row in self.display.itertuples(index=False):
            lines.append("| " + " | ".join(markdown_escape(v) for v in row) + " |")
        out = "\n".join(lines) + "\n"
        if self.notes:
            out += f"\n{self.notes}\n"
        return out

    def to_latex(self, label: str | None = None) -> str:
        cols = list(self.display.columns)
        lines = [
            r"\begin{table}[t]",
            r"\centering",
            r"\small",
            rf"\caption{{{latex_escape(self.caption)}}}",
            rf"\label{{tab:{label or self.name}}}",
            rf"\begin{{tabular}}{{{''.join(self._align())}}}",
            r"\toprule",
            " & ".join(latex_escape(c) for c in cols) + r" \\",
            r"\midrule",
        ]
        for row in self.display.itertuples(index=False):
            lines.append(" & ".join(latex_escape(v) for v in row) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}"]
        if self.notes:
            lines.append(rf"\par\smallskip\footnotesize {latex_escape(self.notes)}")
        lines.append(r"\end{table}")
        return "\n".join(lines) + "\n"

    def _align(self) -> list[str]:
        n = len(self.display.columns)
        if self.align:
            if len(self.align) != n:
                raise ValueError(f"table {self.name}: align {self.align!r} has {len(self.align)} columns, table has {n}")
            return list(self.align)
        return ["l"] + ["r"] * (n - 1)

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write <name>.md, <name>.tex, <name>.csv (each atomically); returns the paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        out = {}
        for ext, text in (("md", self.to_markdown()), ("tex", self.to_latex()), ("csv", self.data.to_csv(index=False))):
            path = directory / f"{self.name}.{ext}"
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text)
            os.replace(tmp, path)
            out[ext] = path
        return out


def fmt(x, digits: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "—"
    return "—" if v != v else f"{v:.{digits}f}"


def fmt_ci(lo, hi, digits: int = 3) -> str:
    a, b = fmt(lo, digits), fmt(hi, digits)
    return "—" if "—" in (a, b) else f"[{a}, {b}]"


def fmt_p(p) -> str:
    try:
        v = float(p)
    except (TypeError, ValueError):
        return "—"
    if v != v:
        return "—"
    return "<0.001" if v < 0.001 else f"{v:.3f}"
