"""The PRISMA 2020 flow diagram drawn from a `Flow`: one geometry, two renderers.

`layout(flow)` places the boxes, arrows and side bands (identification,
screening, included) of the PRISMA 2020 template for an updated review with
databases, registers and other methods: a previous-studies column, a
databases-and-registers column with its side boxes, and an other-methods
column. Text is wrapped to each box with a conservative character width, so
no line runs past its border in either renderer. `to_svg` writes SVG text
(every number appears as text, so it can be searched and checked);
`write_png` draws the same geometry as a PNG, with Pillow in the DejaVu fonts that
matplotlib ships (or with matplotlib's Agg backend where they are not found).
"""

from __future__ import annotations

import importlib.util
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from base.output import Protected, write_file
from db.flow import Column, Flow

FONT = 12.0
LINE = 16.0
PAD = 8.0
GAP = 36.0  # vertical space between rows, room for arrows
CHAR_W = 0.57 * FONT  # a little wider than DejaVu Sans' average glyph
BOLD_W = 0.66 * FONT
NBSP = "\u00a0"
FONT_FAMILY = "DejaVu Sans, Helvetica, Arial, sans-serif"

WHITE, GREY, YELLOW, BLUE = "#ffffff", "#e6e6e6", "#ffd966", "#9dc3e6"

# x positions and widths of the columns
BAND_X, BAND_W = 10.0, 30.0
PREV_X, PREV_W = 52.0, 200.0
DB_X, DB_W = 272.0, 240.0
DBS_X, DBS_W = 530.0, 240.0
OT_X, OT_W = 800.0, 220.0
OTS_X, OTS_W = 1038.0, 220.0
WIDTH = OTS_X + OTS_W + 12.0


@dataclass(frozen=True)
class Line:
    text: str
    bold: bool = False
    indent: float = 0.0


@dataclass(frozen=True)
class Box:
    key: str
    x: float
    y: float
    w: float
    h: float
    lines: tuple[Line, ...]
    fill: str = WHITE
    centred: bool = False


@dataclass(frozen=True)
class Arrow:
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Band:
    label: str
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Diagram:
    width: float
    height: float
    boxes: tuple[Box, ...]
    arrows: tuple[Arrow, ...]
    bands: tuple[Band, ...]
    title: str


def n(value: int) -> str:
    return f"(n = {value:,})"


def _wrap(lines: list[Line], width: float) -> tuple[Line, ...]:
    out: list[Line] = []
    for ln in lines:
        cw = BOLD_W if ln.bold else CHAR_W
        hang = 0.0 if ln.bold else 10.0  # continuation lines hang under the first
        chars = max(8, int((width - 2 * PAD - ln.indent - hang) / cw))
        # "(n = 1,234)" never breaks: the wrapper only splits at ASCII spaces
        text = ln.text.replace("(n = ", f"(n{NBSP}={NBSP}")
        parts = [p.replace(NBSP, " ")
                 for p in textwrap.wrap(text, chars, break_long_words=True)] or [""]
        out.append(Line(parts[0], ln.bold, ln.indent))
        out.extend(Line(p, ln.bold, ln.indent + hang) for p in parts[1:])
    return tuple(out)


def _height(lines: tuple[Line, ...]) -> float:
    return 2 * PAD + LINE * len(lines)


def _excluded_lines(title: str, col: Column, awaiting: int, awaiting_label: str,
                    origins: list[Line] | None = None) -> list[Line]:
    colon = ":" if col.excluded_reasons and not origins else ""
    lines = [Line(f"{title} {n(col.excluded)}{colon}", bold=True)]
    if origins and col.excluded_reasons:
        lines += origins + [Line("Reasons:")]
    elif origins:
        lines += origins
    lines += [Line(f"{reason} {n(k)}", indent=10) for reason, k in col.excluded_reasons]
    if awaiting:
        lines.append(Line(f"{awaiting_label} {n(awaiting)}"))
    return lines


def _origin_lines(flow: Flow, attr: str) -> list[Line]:
    """In the screen-other layout, where the records of a shared box came from."""
    if flow.layout != "screen-other":
        return []
    names = (("databases", "databases and registers"), ("other", "other methods"))
    parts = [(label, getattr(flow.columns[key], attr)) for key, label in names]
    return [Line(f"from {label} {n(v)}", indent=10) for label, v in parts if v]


def _box_texts(flow: Flow) -> dict[str, tuple[list[Line], str]]:
    s = flow.screening
    other = flow.columns["other"]
    standard = flow.layout == "standard"
    db_lines = [Line("Records identified from:", bold=True),
                Line(f"Databases {n(flow.identified('database'))}")]
    db_lines += [Line(f"{x.label} {n(x.identified)}", indent=10)
                 for x in flow.sources if x.role == "database"]
    db_lines.append(Line(f"Registers {n(flow.identified('register'))}"))
    db_lines += [Line(f"{x.label} {n(x.identified)}", indent=10)
                 for x in flow.sources if x.role == "register"]
    removed = [Line("Records removed before screening:", bold=True),
               Line(f"Duplicate records {n(s.duplicates)}"),
               Line(f"Records marked as ineligible by automation tools {n(s.excluded_automatic)}"),
               Line(f"Records removed for other reasons {n(s.excluded_other)}")]
    ot_lines = [Line("Records identified from:", bold=True),
                Line(f"Websites {n(flow.identified(template_row='website_results'))}")]
    ot_lines += [Line(f"{x.label} {n(x.identified)}", indent=10)
                 for x in flow.sources if x.template_row == "website_results"]
    ot_lines.append(
        Line(f"Organisations {n(flow.identified(template_row='organisation_results'))}"))
    ot_lines += [Line(f"{x.label} {n(x.identified)}", indent=10)
                 for x in flow.sources if x.template_row == "organisation_results"]
    ot_lines.append(Line(f"Citation searching "
                         f"{n(flow.identified(template_row='citations_results'))}"))
    ot_lines += [Line(f"{x.label} {n(x.identified)}", indent=10)
                 for x in flow.sources if x.template_row == "citations_results"]
    if standard and other.duplicates:
        ot_lines.append(Line(f"Duplicates of records found elsewhere {n(other.duplicates)}"))
    prev = [Line(f"Studies included in previous version of review {n(flow.previous_studies)}"),
            Line(""),
            Line(f"Reports of studies included in previous version of review "
                 f"{n(flow.previous_reports)}")]
    excluded_screen = [Line(f"Records excluded {n(s.screen_excluded)}", bold=True)]
    if s.screen_awaiting:
        excluded_screen.append(Line(f"Awaiting title-abstract decision {n(s.screen_awaiting)}"))
    texts: dict[str, tuple[list[Line], str]] = {
        "prevstud": ([Line("Previous studies", bold=True)], GREY),
        "newstud": ([Line("Identification of new studies via databases and registers",
                          bold=True)], YELLOW),
        "othstud": ([Line("Identification of new studies via other methods", bold=True)], GREY),
        "box1": (prev, WHITE),
        "box2": (db_lines, WHITE),
        "box3": (removed, WHITE),
        "box11": (ot_lines, WHITE),
        "box4": ([Line(f"Records screened {n(s.screened)}", bold=True)]
                 + _origin_lines(flow, "screened"), WHITE),
        "box5": (excluded_screen + _origin_lines(flow, "screen_excluded"), WHITE),
        "box6": ([Line(f"Reports sought for retrieval {n(s.sought)}", bold=True)]
                 + _origin_lines(flow, "sought"), WHITE),
        "box7": ([Line(f"Reports not retrieved {n(s.not_retrieved)}", bold=True)], WHITE),
        "box8": ([Line(f"Reports assessed for eligibility {n(s.assessed)}", bold=True)]
                 + _origin_lines(flow, "assessed"), WHITE),
        "box9": (_excluded_lines("Reports excluded", s, s.fulltext_awaiting,
                                 "Awaiting full-text decision", _origin_lines(flow, "excluded")),
                 WHITE),
        "box10": ([Line(f"New studies included in review {n(flow.new_studies)}", bold=True),
                   Line(f"Reports of new included studies {n(flow.new_reports)}", bold=True)]
                  + _origin_lines(flow, "reports_included"), WHITE),
        "box16": ([Line(f"Total studies included in review {n(flow.total_studies)}", bold=True),
                   Line(f"Reports of total included studies {n(flow.total_reports)}",
                        bold=True)], WHITE),
    }
    if flow.review_type != "update":
        # a new review has no previous-studies column
        del texts["prevstud"], texts["box1"]
    if standard:
        texts["box12"] = ([Line(f"Reports sought for retrieval {n(other.sought)}", bold=True)],
                          WHITE)
        texts["box13"] = ([Line(f"Reports not retrieved {n(other.not_retrieved)}", bold=True)],
                          WHITE)
        texts["box14"] = ([Line(f"Reports assessed for eligibility {n(other.assessed)}",
                                bold=True)], WHITE)
        texts["box15"] = (_excluded_lines("Reports excluded", other, other.fulltext_awaiting,
                                          "Awaiting full-text decision"), WHITE)
    return texts


#: (row, box key, x, width) of every box that may be drawn
PLACES = (
    (0, "prevstud", PREV_X, PREV_W), (0, "newstud", DB_X, DBS_X + DBS_W - DB_X),
    (0, "othstud", OT_X, OTS_X + OTS_W - OT_X),
    (1, "box1", PREV_X, PREV_W), (1, "box2", DB_X, DB_W), (1, "box3", DBS_X, DBS_W),
    (1, "box11", OT_X, OT_W),
    (2, "box4", DB_X, DB_W), (2, "box5", DBS_X, DBS_W),
    (3, "box6", DB_X, DB_W), (3, "box7", DBS_X, DBS_W),
    (3, "box12", OT_X, OT_W), (3, "box13", OTS_X, OTS_W),
    (4, "box8", DB_X, DB_W), (4, "box9", DBS_X, DBS_W),
    (4, "box14", OT_X, OT_W), (4, "box15", OTS_X, OTS_W),
    (5, "box10", DB_X, DB_W),
    (6, "box16", PREV_X, PREV_W),
)


def layout(flow: Flow) -> Diagram:
    """Place every box, arrow and band of the diagram for `flow`."""
    texts = _box_texts(flow)
    wrapped = {key: _wrap(texts[key][0], w) for _, key, _, w in PLACES if key in texts}
    heights: dict[int, float] = {}
    for row, key, _, _ in PLACES:
        if key in wrapped:
            heights[row] = max(heights.get(row, 0.0), _height(wrapped[key]))
    top = 50.0
    row_y: dict[int, float] = {}
    y = top
    for row in sorted(heights):
        row_y[row] = y
        y += heights[row] + (GAP if row else GAP * 0.6)
    height = y - GAP + 20.0
    boxes: dict[str, Box] = {}
    for row, key, x, w in PLACES:
        if key in wrapped:
            boxes[key] = Box(key, x, row_y[row], w, heights[row], wrapped[key], texts[key][1],
                             centred=row == 0)

    arrows: list[Arrow] = []

    def down(a: str, b: str, fx: float = 0.5) -> None:
        x = boxes[a].x + boxes[a].w * fx
        arrows.append(Arrow(((x, boxes[a].y + boxes[a].h), (x, boxes[b].y))))

    def right(a: str, b: str) -> None:
        ya = boxes[a].y + boxes[a].h / 2
        arrows.append(Arrow(((boxes[a].x + boxes[a].w, ya), (boxes[b].x, ya))))

    def elbow_into_top(a: str, b: str, fx: float) -> None:
        """From a box's bottom, through the gap below its row, into the top of `b`."""
        ba, bb = boxes[a], boxes[b]
        xa, xb = ba.x + ba.w / 2, bb.x + bb.w * fx
        ymid = bb.y - GAP / 2
        arrows.append(Arrow(((xa, ba.y + ba.h), (xa, ymid), (xb, ymid), (xb, bb.y))))

    def elbow_into_side(a: str, b: str) -> None:
        """From a box's bottom straight down, then sideways into `b`'s nearer edge."""
        ba, bb = boxes[a], boxes[b]
        xa, yb = ba.x + ba.w / 2, bb.y + bb.h / 2
        xb = bb.x + bb.w if bb.x < ba.x else bb.x
        arrows.append(Arrow(((xa, ba.y + ba.h), (xa, yb), (xb, yb))))

    down("box2", "box4")
    right("box2", "box3")
    right("box4", "box5")
    down("box4", "box6")
    right("box6", "box7")
    down("box6", "box8")
    right("box8", "box9")
    down("box8", "box10")
    elbow_into_side("box10", "box16")
    if "box1" in boxes:
        down("box1", "box16")
    if flow.layout == "standard":
        down("box11", "box12")
        right("box12", "box13")
        down("box12", "box14")
        right("box14", "box15")
        elbow_into_side("box14", "box10")
    else:
        elbow_into_top("box11", "box4", 0.8)

    ident_bottom = row_y[1] + heights[1]
    screen_top, screen_bottom = row_y[2], row_y[4] + heights[4]
    inc_top, inc_bottom = row_y[5], row_y[6] + heights[6]
    bands = (
        Band("Identification", BAND_X, row_y[1], BAND_W, ident_bottom - row_y[1]),
        Band("Screening", BAND_X, screen_top, BAND_W, screen_bottom - screen_top),
        Band("Included", BAND_X, inc_top, BAND_W, inc_bottom - inc_top),
    )
    title = ("PRISMA 2020 flow diagram" + (" (other-methods records screened with database "
                                           "records)" if flow.layout == "screen-other" else ""))
    return Diagram(WIDTH, height, tuple(boxes.values()), tuple(arrows), bands, title)


# --- renderers ------------------------------------------------------------------------


def _text_y(box: Box, i: int) -> float:
    return box.y + PAD + LINE * (i + 1) - 4


def _text_x(box: Box, line: Line) -> float:
    return box.x + box.w / 2 if box.centred else box.x + PAD + line.indent


def to_svg(diagram: Diagram) -> str:
    w, h = diagram.width, diagram.height
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0f}" height="{h:.0f}" '
        f'viewBox="0 0 {w:.0f} {h:.0f}" font-family="{FONT_FAMILY}" font-size="{FONT:g}">',
        f"<title>{escape(diagram.title)}</title>",
        "<defs><marker id=\"head\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
        "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">"
        "<path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#000\"/></marker></defs>",
        f'<rect x="0" y="0" width="{w:.0f}" height="{h:.0f}" fill="#ffffff"/>',
        f'<text x="{w / 2:.1f}" y="28" text-anchor="middle" font-size="{FONT + 3:g}" '
        f'font-weight="bold">{escape(diagram.title)}</text>',
    ]
    for b in diagram.bands:
        cx, cy = b.x + b.w / 2, b.y + b.h / 2
        out.append(f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" '
                   f'rx="4" fill="{BLUE}" stroke="#000"/>')
        out.append(f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="middle" '
                   f'dominant-baseline="central" font-weight="bold" '
                   f'transform="rotate(-90 {cx:.1f} {cy:.1f})">{escape(b.label)}</text>')
    for box in diagram.boxes:
        out.append(f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" '
                   f'height="{box.h:.1f}" rx="3" fill="{box.fill}" stroke="#000"/>')
        anchor = ' text-anchor="middle"' if box.centred else ""
        for i, line in enumerate(box.lines):
            if not line.text:
                continue
            weight = ' font-weight="bold"' if line.bold else ""
            out.append(f'<text x="{_text_x(box, line):.1f}" y="{_text_y(box, i):.1f}"'
                       f'{anchor}{weight}>{escape(line.text)}</text>')
    for a in diagram.arrows:
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in a.points)
        out.append(f'<polyline points="{pts}" fill="none" stroke="#000" stroke-width="1.3" '
                   'marker-end="url(#head)"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write_svg(diagram: Diagram, path: str | Path, protect: Protected = ()) -> None:
    """The diagram as an SVG file at `path`, never over one of the files in `protect`."""
    write_file(path, to_svg(diagram), protect)


def _draw(diagram: Diagram) -> tuple[Any, list[tuple[Any, Box]]]:
    """The matplotlib figure of `diagram`, and each box's text artists (for checking fit)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

    fig = Figure(figsize=(diagram.width / 72, diagram.height / 72))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, diagram.width)
    ax.set_ylim(diagram.height, 0)
    ax.axis("off")
    ax.add_patch(Rectangle((0, 0), diagram.width, diagram.height, color="white", zorder=0))
    ax.text(diagram.width / 2, 28, diagram.title, ha="center", va="baseline",
            fontsize=FONT + 3, fontweight="bold")
    for b in diagram.bands:
        ax.add_patch(FancyBboxPatch((b.x, b.y), b.w, b.h, boxstyle="round,pad=0,rounding_size=4",
                                    facecolor=BLUE, edgecolor="black", linewidth=0.8))
        ax.text(b.x + b.w / 2, b.y + b.h / 2, b.label, rotation=90, ha="center", va="center",
                fontsize=FONT, fontweight="bold")
    texts: list[tuple[Any, Box]] = []
    for box in diagram.boxes:
        ax.add_patch(FancyBboxPatch((box.x, box.y), box.w, box.h,
                                    boxstyle="round,pad=0,rounding_size=3",
                                    facecolor=box.fill, edgecolor="black", linewidth=0.8))
        for i, line in enumerate(box.lines):
            if line.text:
                texts.append((ax.text(_text_x(box, line), _text_y(box, i), line.text,
                                      fontsize=FONT, ha="center" if box.centred else "left",
                                      va="baseline",
                                      fontweight="bold" if line.bold else "normal"), box))
    for a in diagram.arrows:
        pts = a.points
        if len(pts) > 2:
            xs, ys = zip(*pts[:-1])
            ax.plot(xs, ys, color="black", linewidth=1.0)
        ax.add_patch(FancyArrowPatch(pts[-2], pts[-1], arrowstyle="-|>", mutation_scale=10,
                                     color="black", linewidth=1.0, shrinkA=0, shrinkB=0))
    return fig, texts


def _font_files() -> tuple[Path, Path] | None:
    """DejaVu Sans, regular and bold, as matplotlib ships them (the fonts its own drawing
    uses), found without loading matplotlib; None when this installation has them elsewhere."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf"
    files = (folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf")
    return files if all(f.is_file() for f in files) else None


def _fonts(scale: float, files: tuple[Path, Path]) -> tuple[Any, Any, Any]:
    """(regular, bold, title) fonts at `scale` pixels per diagram unit."""
    from PIL import ImageFont

    regular, bold = (str(f) for f in files)
    return (ImageFont.truetype(regular, FONT * scale), ImageFont.truetype(bold, FONT * scale),
            ImageFont.truetype(bold, (FONT + 3) * scale))


def _paint(diagram: Diagram, dpi: int, files: tuple[Path, Path]) -> Any:
    """The diagram as a Pillow image, `dpi` pixels per inch of 72 diagram units: the
    geometry and fonts of the matplotlib drawing, without loading matplotlib (which took
    three quarters of the time of writing a PNG)."""
    from PIL import Image, ImageDraw

    s = dpi / 72
    image = Image.new("RGB", (int(diagram.width * s), int(diagram.height * s)), WHITE)
    draw = ImageDraw.Draw(image)
    regular, bold, title = _fonts(s, files)
    edge = max(1, round(0.8 * s))
    draw.text((diagram.width / 2 * s, 28 * s), diagram.title, font=title, fill="black",
              anchor="ms")
    for b in diagram.bands:
        draw.rounded_rectangle((b.x * s, b.y * s, (b.x + b.w) * s, (b.y + b.h) * s),
                               radius=4 * s, fill=BLUE, outline="black", width=edge)
        left, top, right, bottom = bold.getbbox(b.label, anchor="mm")
        w, h = right - left + 4, bottom - top + 4
        label = Image.new("L", (int(w), int(h)), 0)
        ImageDraw.Draw(label).text((w / 2, h / 2), b.label, font=bold, fill=255, anchor="mm")
        label = label.rotate(90, expand=True)  # read upwards, as the SVG's band labels
        cx, cy = (b.x + b.w / 2) * s, (b.y + b.h / 2) * s
        image.paste((0, 0, 0), (round(cx - label.width / 2), round(cy - label.height / 2)),
                    label)
    for box in diagram.boxes:
        draw.rounded_rectangle((box.x * s, box.y * s, (box.x + box.w) * s, (box.y + box.h) * s),
                               radius=3 * s, fill=box.fill, outline="black", width=edge)
        for i, line in enumerate(box.lines):
            if line.text:
                draw.text((_text_x(box, line) * s, _text_y(box, i) * s), line.text,
                          font=bold if line.bold else regular, fill="black",
                          anchor="ms" if box.centred else "ls")
    width, head_length, head_width = max(1, round(s)), 4 * s, 2 * s
    for a in diagram.arrows:
        pts = [(x * s, y * s) for x, y in a.points]
        (x0, y0), (x1, y1) = pts[-2], pts[-1]
        length = math.hypot(x1 - x0, y1 - y0) or 1.0
        ux, uy = (x1 - x0) / length, (y1 - y0) / length
        bx, by = x1 - ux * head_length, y1 - uy * head_length
        draw.line(pts[:-1] + [(bx, by)], fill="black", width=width, joint="curve")
        draw.polygon([(x1, y1), (bx - uy * head_width, by + ux * head_width),
                      (bx + uy * head_width, by - ux * head_width)], fill="black")
    return image


def overflows(diagram: Diagram) -> list[str]:
    """Lines whose drawn extent leaves their box (measured with the fonts `write_png`
    draws with); [] when all fit."""
    files = _font_files()
    if files is None:
        return _overflows_matplotlib(diagram)
    s = 200 / 72  # measured as drawn: glyphs are hinted differently at other sizes
    regular, bold, _ = _fonts(s, files)
    out = []
    for box in diagram.boxes:
        for i, line in enumerate(box.lines):
            if not line.text:
                continue
            x, y = _text_x(box, line), _text_y(box, i)
            left, top, right, bottom = (v / s for v in (bold if line.bold else regular).getbbox(
                line.text, anchor="ms" if box.centred else "ls"))
            if x + left < box.x + 1 or x + right > box.x + box.w - 1 or \
                    y + top < box.y + 1 or y + bottom > box.y + box.h - 1:
                out.append(f"{box.key}: {line.text}")
    return out


def _overflows_matplotlib(diagram: Diagram) -> list[str]:
    fig, texts = _draw(diagram)
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    out = []
    for artist, box in texts:
        bb = artist.get_window_extent(renderer).transformed(ax.transData.inverted())
        left, right = min(bb.x0, bb.x1), max(bb.x0, bb.x1)
        top, bottom = min(bb.y0, bb.y1), max(bb.y0, bb.y1)
        if left < box.x + 1 or right > box.x + box.w - 1 or top < box.y + 1 or \
                bottom > box.y + box.h - 1:
            out.append(f"{box.key}: {artist.get_text()}")
    return out


def write_png(diagram: Diagram, path: str | Path, dpi: int = 200, *,
              protect: Protected = ()) -> None:
    """The same geometry as the SVG, drawn with Pillow in the fonts matplotlib ships, or
    with matplotlib (Agg) where those fonts are not found: one diagram unit is one point.
    The pixels are compressed at zlib's fastest level: at the default level compressing
    took longer than drawing, for a file a quarter smaller."""
    files = _font_files()
    if files is None:
        fig, _ = _draw(diagram)
        write_file(path, lambda fh: fig.savefig(fh, dpi=dpi, facecolor="white", format="png",
                                                pil_kwargs={"compress_level": 1}),
                   protect)
        return
    image = _paint(diagram, dpi, files)
    write_file(path, lambda fh: image.save(fh, format="png", dpi=(dpi, dpi), compress_level=1),
               protect)
