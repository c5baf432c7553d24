"""The results chart of the admin page: inline SVG drawn here (no script, no CDN;
docs/experiments.md, "Results"). Per variant, a bar of the conversion rate and a whisker for
its 95 % Wilson interval, labelled with the numbers."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, ROW, LEFT, RIGHT = 640, 44, 130, 170


def results_svg(rows: list[dict]) -> SafeString:
    top = max([r["rate_high"] or 0 for r in rows] + [0.01]) * 1.1
    plot = WIDTH - LEFT - RIGHT
    height = ROW * len(rows) + 40

    def x(value: float) -> float:
        return LEFT + plot * value / top

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="experiment-chart" role="img" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" '
        'aria-label="Conversion rate per variant, with 95% intervals">',
        f'<line x1="{LEFT}" y1="10" x2="{LEFT}" y2="{height - 30}" stroke="#888"/>',
    ]
    for tick in range(5):
        value = top * tick / 4
        parts.append(
            f'<text x="{x(value):.1f}" y="{height - 12}" font-size="11" text-anchor="middle" fill="#555">'
            f"{value:.1%}</text>"
        )
    for i, row in enumerate(rows):
        y = 14 + i * ROW
        colour = "#9aa5b1" if i == 0 else "#3a7bd5"
        label = escape(row["variant"])
        parts.append(f'<text x="{LEFT - 8}" y="{y + 18}" font-size="13" text-anchor="end">{label}</text>')
        if row["rate"] is None:
            parts.append(f'<text x="{LEFT + 6}" y="{y + 18}" font-size="12" fill="#777">no exposures yet</text>')
            continue
        parts.append(
            f'<rect class="bar" data-variant="{label}" x="{LEFT}" y="{y + 4}" '
            f'width="{max(x(row["rate"]) - LEFT, 1):.1f}" '
            f'height="20" fill="{colour}"/>'
        )
        lo, hi = x(row["rate_low"]), x(row["rate_high"])
        parts.append(
            f'<path d="M{lo:.1f},{y + 14} H{hi:.1f} M{lo:.1f},{y + 8} V{y + 20} M{hi:.1f},{y + 8} V{y + 20}" '
            'stroke="#222" fill="none"/>'
        )
        parts.append(
            f'<text x="{WIDTH - RIGHT + 8}" y="{y + 18}" font-size="12">{row["rate"]:.2%} '
            f"({row['conversions']}/{row['exposures']})</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308  (every text in it is a number or escaped)
