"""SVG charts for the benchmark report: grouped bars and lines, no plotting library needed.

Each benchmark calls these with its own figures, so the plots in docs/performance.md always come from the run
that wrote the JSON beside them.
"""

import math
from xml.sax.saxutils import escape

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 640, 340, 64, 16, 40, 64


def _ticks(top):
    """About five round tick values from 0 to at least `top`."""
    if top <= 0:
        return [0, 1]
    raw = top / 5.0
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    count = int(math.ceil(top / step - 1e-9))
    return [round(i * step, 6) for i in range(count + 1)]


def _frame(title, unit, ticks, parts):
    scale = (HEIGHT - TOP - BOTTOM) / float(ticks[-1] or 1)
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">'
           % (WIDTH, HEIGHT), '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="20" font-size="14" font-weight="bold">%s</text>' % (LEFT, escape(title))]
    for tick in ticks:
        y = HEIGHT - BOTTOM - tick * scale
        out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>' % (LEFT, WIDTH - RIGHT, y, y))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (LEFT - 6, y + 4, tick))
    out.append('<text x="14" y="%d" transform="rotate(-90 14 %d)" text-anchor="middle">%s</text>'
               % ((HEIGHT - BOTTOM + TOP) // 2, (HEIGHT - BOTTOM + TOP) // 2, escape(unit)))
    out.extend(parts(scale))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _legend(names, y):
    parts, x = [], LEFT
    for index, name in enumerate(names):
        parts.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/>' % (x, y, PALETTE[index % len(PALETTE)]))
        parts.append('<text x="%d" y="%d">%s</text>' % (x + 14, y + 9, escape(name)))
        x += 24 + 7 * len(name)
    return parts


def bars(title, unit, groups, series, values, stacked=False, target=None):
    """Bars per group (x axis) and series; values[series][group] (None = not measured). Optional target line."""
    heights = [sum(values[s][g] or 0 for s in series) if stacked else max(values[s][g] or 0 for s in series)
               for g in groups]
    ticks = _ticks(max(heights + [target[1] if target else 0]))

    def parts(scale):
        out = []
        slot = (WIDTH - LEFT - RIGHT) / float(len(groups))
        width = slot * 0.7 / (1 if stacked else len(series))
        base = HEIGHT - BOTTOM
        for gi, group in enumerate(groups):
            x0 = LEFT + gi * slot + slot * 0.15
            stack = 0.0
            for si, name in enumerate(series):
                value = values[name][group]
                if value is None:
                    continue
                h = value * scale
                x = x0 if stacked else x0 + si * width
                y = base - stack - h
                out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %.3g</title>'
                           '</rect>' % (x, y, width, h, PALETTE[si % len(PALETTE)], escape(name), escape(group), value))
                if not stacked:
                    out.append('<text x="%.1f" y="%.1f" text-anchor="middle" font-size="9">%.3g</text>'
                               % (x + width / 2, y - 3, value))
                stack = stack + h if stacked else 0.0
            out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                       % (LEFT + gi * slot + slot / 2, base + 16, escape(group)))
        if target:
            y = base - target[1] * scale
            out.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#c00" stroke-dasharray="6 4"/>'
                       % (LEFT, WIDTH - RIGHT, y, y))
            out.append('<text x="%d" y="%.1f" text-anchor="end" fill="#c00">%s</text>'
                       % (WIDTH - RIGHT, y - 4, escape(target[0])))
        out.extend(_legend(series, HEIGHT - 28))
        return out

    return _frame(title, unit, ticks, parts)


def write(path, svg):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(svg)
