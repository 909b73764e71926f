"""Line charts as standalone SVG, standard library only (the summary scripts draw their curves
with it; no plotting package to install).

    from svgplot import Panel, write_svg
    p = Panel("send -> ack p99", "records/s", "ms", log_x=True, log_y=True)
    p.series("kafkit", [(1000, 0.7), (10000, 1.1)])
    p.series("rdkafka", [(1000, 1.9), (10000, 2.4)])
    write_svg("latency.svg", "Latency at fixed rates", [p])

Panels are stacked vertically in one file. Points with a None coordinate are skipped; a log
axis skips values <= 0. Series keep one colour and marker per name across the panels of a file.
"""
import math
from xml.sax.saxutils import escape

WIDTH, PANEL_H = 720, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 170, 34, 46
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
DASHES = ["", "6 3", "2 3", "8 3 2 3"]


class Panel:
    """One chart: a title, axis labels, and named series of (x, y) points."""

    def __init__(self, title, x_label, y_label, log_x=False, log_y=False, y_from_zero=False):
        self.title, self.x_label, self.y_label = title, x_label, y_label
        self.log_x, self.log_y, self.y_from_zero = log_x, log_y, y_from_zero
        self.lines = []

    def series(self, name, points, dashed=0):
        pts = [(x, y) for x, y in points if x is not None and y is not None
               and (not self.log_x or x > 0) and (not self.log_y or y > 0)]
        if pts:
            self.lines.append((name, sorted(pts), dashed))
        return self


def _ticks(lo, hi, log):
    if log:
        a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        ticks = [10 ** e for e in range(a, b + 1)]
        if len(ticks) <= 3:
            ticks = sorted({m * 10 ** e for e in range(a, b + 1) for m in (1, 2, 5)})
        return [t for t in ticks if lo / 1.0001 <= t <= hi * 1.0001] or [lo, hi]
    if hi == lo:
        hi = lo + 1
    raw = (hi - lo) / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    first = math.ceil(lo / step) * step
    out, t = [], first
    while t <= hi + step * 1e-9:
        out.append(round(t, 10))
        t += step
    return out


def _label(v):
    if v == 0:
        return "0"
    if abs(v) >= 1e6:
        return f"{v / 1e6:g}M"
    if abs(v) >= 1e4:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def _panel_svg(panel, y0, colour_of):
    xs = [x for _, pts, _ in panel.lines for x, _ in pts]
    ys = [y for _, pts, _ in panel.lines for _, y in pts]
    out = [f'<text x="{LEFT}" y="{y0 + 20}" font-size="14" font-weight="bold">'
           f'{escape(panel.title)}</text>']
    if not xs:
        out.append(f'<text x="{LEFT}" y="{y0 + 60}" font-size="12">no data</text>')
        return out
    x_lo, x_hi = min(xs), max(xs)
    y_lo, y_hi = min(ys), max(ys)
    if panel.y_from_zero and not panel.log_y:
        y_lo = min(0, y_lo)
    if not panel.log_y:
        pad = (y_hi - y_lo) * 0.05 or abs(y_hi) * 0.05 or 1
        y_hi += pad
        if not panel.y_from_zero:
            y_lo -= pad
    if x_lo == x_hi:
        x_lo, x_hi = (x_lo / 2, x_hi * 2) if panel.log_x else (x_lo - 1, x_hi + 1)
    if y_lo == y_hi:
        y_lo, y_hi = (y_lo / 2, y_hi * 2) if panel.log_y else (y_lo - 1, y_hi + 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, PANEL_H - TOP - BOTTOM
    top = y0 + TOP

    def f(v, lo, hi, log):
        if log:
            return (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        return (v - lo) / (hi - lo)

    def px(x):
        return LEFT + f(x, x_lo, x_hi, panel.log_x) * plot_w

    def py(y):
        return top + plot_h - f(y, y_lo, y_hi, panel.log_y) * plot_h

    out.append(f'<rect x="{LEFT}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" '
               f'stroke="#444"/>')
    for t in _ticks(x_lo, x_hi, panel.log_x):
        x = px(t)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + plot_h}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" font-size="11" '
                   f'text-anchor="middle">{_label(t)}</text>')
    for t in _ticks(y_lo, y_hi, panel.log_y):
        y = py(t)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}" '
                   f'stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="11" '
                   f'text-anchor="end">{_label(t)}</text>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{top + plot_h + 36}" font-size="12" '
               f'text-anchor="middle">{escape(panel.x_label)}</text>')
    out.append(f'<text x="16" y="{top + plot_h / 2}" font-size="12" text-anchor="middle" '
               f'transform="rotate(-90 16 {top + plot_h / 2})">{escape(panel.y_label)}</text>')
    for i, (name, pts, dashed) in enumerate(panel.lines):
        colour = colour_of(name)
        dash = DASHES[dashed % len(DASHES)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"'
                   f'{dash_attr}/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}"/>')
        ly = top + 10 + i * 18
        out.append(f'<line x1="{WIDTH - RIGHT + 12}" y1="{ly}" x2="{WIDTH - RIGHT + 36}" '
                   f'y2="{ly}" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        out.append(f'<text x="{WIDTH - RIGHT + 42}" y="{ly + 4}" font-size="11">'
                   f'{escape(name)}</text>')
    return out


def split_svg_arg(args):
    """(args without `--svg FILE`, FILE or None): the summary scripts' one optional flag."""
    args = list(args)
    if "--svg" in args:
        i = args.index("--svg")
        if i + 1 < len(args):
            return args[:i] + args[i + 2:], args[i + 1]
    return args, None


def write_svg(path, title, panels, note=""):
    """Writes the panels, stacked, under `title` (and a one-line `note`) to `path`."""
    colours = {}

    def colour_of(name):
        base = name.split(" ")[0]
        if base not in colours:
            colours[base] = COLOURS[len(colours) % len(COLOURS)]
        return colours[base]

    head = 44 if note else 30
    height = head + PANEL_H * len(panels)
    body = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">',
            f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
            f'<text x="{WIDTH / 2}" y="20" font-size="16" font-weight="bold" '
            f'text-anchor="middle">{escape(title)}</text>']
    if note:
        body.append(f'<text x="{WIDTH / 2}" y="36" font-size="11" text-anchor="middle" '
                    f'fill="#555">{escape(note)}</text>')
    for i, panel in enumerate(panels):
        body.extend(_panel_svg(panel, head + i * PANEL_H, colour_of))
    body.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(body) + "\n")
