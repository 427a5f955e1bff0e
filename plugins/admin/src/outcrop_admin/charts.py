"""Bar charts drawn on the server as inline SVG: no script, no CDN, readable offline and by
screen readers (a title per bar, the table next to each chart has the numbers)."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 220
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 56, 36, 12


def money(value: float) -> str:
    return f"${value:,.6f}" if 0 < abs(value) < 0.01 else f"${value:,.2f}"


def columns(points: Sequence[tuple[str, float]], *, label: str) -> Markup:
    """Vertical bars (a time series): one per point, every few x labels shown."""
    if not points:
        return Markup("")
    top = max(v for _, v in points) or 1.0
    plot_w, plot_h = WIDTH - PAD_LEFT - 8, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / len(points)
    every = max(1, len(points) // 8)
    parts = [_axis(top, plot_h)]
    for i, (name, value) in enumerate(points):
        h = plot_h * value / top
        x = PAD_LEFT + i * step
        parts.append(
            f'<rect class="bar" x="{x + step * 0.1:.1f}" y="{PAD_TOP + plot_h - h:.1f}" '
            f'width="{max(step * 0.8, 1):.1f}" height="{h:.1f}">'
            f"<title>{escape(name)}: {escape(money(value))}</title></rect>"
        )
        if i % every == 0:
            parts.append(
                f'<text class="tick" x="{x + step / 2:.1f}" y="{HEIGHT - PAD_BOTTOM + 16}" '
                f'text-anchor="middle">{escape(name[5:] if len(name) == 10 else name)}</text>'
            )
    return _svg(parts, label, HEIGHT)


def bars(points: Sequence[tuple[str, float]], *, label: str, limit: int = 10) -> Markup:
    """Horizontal bars (a ranking), the largest ``limit`` points."""
    points = list(points)[:limit]
    if not points:
        return Markup("")
    top = max(v for _, v in points) or 1.0
    row, label_w = 24, 200
    height = row * len(points) + 8
    plot_w = WIDTH - label_w - 110
    parts = []
    for i, (name, value) in enumerate(points):
        y = 4 + i * row
        w = plot_w * value / top
        short = name if len(name) <= 28 else name[:27] + "…"
        parts.append(
            f'<text class="tick" x="{label_w - 6}" y="{y + 16}" text-anchor="end">'
            f"{escape(short)}</text>"
            f'<rect class="bar" x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row - 8}">'
            f"<title>{escape(name)}: {escape(money(value))}</title></rect>"
            f'<text class="tick" x="{label_w + w + 6:.1f}" y="{y + 16}">{escape(money(value))}</text>'
        )
    return _svg(parts, label, height)


def _axis(top: float, plot_h: float) -> str:
    base = PAD_TOP + plot_h
    return (
        f'<line class="axis" x1="{PAD_LEFT}" y1="{base}" x2="{WIDTH - 8}" y2="{base}"/>'
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{base}"/>'
        f'<text class="tick" x="{PAD_LEFT - 4}" y="{PAD_TOP + 8}" text-anchor="end">'
        f"{escape(money(top))}</text>"
        f'<text class="tick" x="{PAD_LEFT - 4}" y="{base}" text-anchor="end">$0</text>'
    )


def _svg(parts: list[str], label: str, height: int) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{''.join(parts)}</svg>"
    )
