"""The page around a folium map (for :mod:`kpgeo.products.maps`): title bar, legend, basemap note,
the synthetic-data banner, the digging areas and the site outline as data, and their popups.

All of it is inserted into the HTML *after* folium has rendered it, never handed to folium.
folium (branca) compiles every rendered element as a new Jinja template, so text given to it
that holds ``{{ ... }}`` would be evaluated as Python expressions while the page is built: a
site title from an AOI file could run code. Here text only ever reaches HTML as a value of
kpgeo's own autoescaping templates, or reaches scripts through
:func:`kpgeo.products.htmlsafe.json_for_script`; popups set it with ``textContent``.
"""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from ..methods.baseline_seasons import SEASONS
from .htmlsafe import json_for_script

_ENV = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                          trim_blocks=True, lstrip_blocks=True)
_STYLE = Markup(Path(__file__).with_name("map_page.css").read_text(encoding="utf-8"))
_SCRIPT = Markup(Path(__file__).with_name("map_page.js").read_text(encoding="utf-8"))
#: Where the parts go in folium's page (branca's ``Figure`` template), each exactly once.
_HEAD_END, _BODY_START, _PAGE_END = "\n</head>\n", "<body>\n", "</script>\n</html>"

_HEAD = _ENV.from_string("""
<title>{% if synthetic %}{{ synthetic }}: {% endif %}{{ title }} {{ month }}: digging areas</title>
<style>{{ style }}</style>
<script>{{ icons }}
{{ script }}</script>
""")

_BODY = _ENV.from_string("""
<header class="kpgeo-bar">
  <nav class="kpgeo-nav">
    {% if prev %}<a class="kpgeo-prev" href="../{{ prev }}/map.html">&#9664; {{ prev }}</a>
    {% else %}<span class="kpgeo-off">&#9664;</span>{% endif %}
    <a class="kpgeo-index" href="../../index.html">all sites</a>
    {% if next %}<a class="kpgeo-next" href="../{{ next }}/map.html">{{ next }} &#9654;</a>
    {% else %}<span class="kpgeo-off">&#9654;</span>{% endif %}
  </nav>
  {% if synthetic %}<span class="kpgeo-synthetic" title="{{ explanation }}">{{ synthetic }}</span>{% endif %}
  <h1 class="kpgeo-title"><span id="kpgeo-site-title" title="{{ title }}">{{ title }}</span>
    <span class="kpgeo-month">{{ month }}</span></h1>
  <span class="kpgeo-status kpgeo-{{ status }}" title="{{ status_text }}">
    {{- status_text -}}</span>
  <span class="kpgeo-summary" title="{{ summary }}">{{ summary }}</span>
  <a class="kpgeo-data" href="disturbed.geojson" download>GeoJSON</a>
</header>
{% if synthetic %}
<div class="kpgeo-watermark" aria-hidden="true" style="background-image: {{ watermark }}"></div>
<div class="kpgeo-synthetic-banner" role="note"><b>{{ synthetic }}</b>: {{ explanation }}.</div>
{% endif %}
<section class="kpgeo-legend" aria-label="legend">
  <h2>Digging areas</h2>
  <div class="kpgeo-legend-preexisting"><i class="kpgeo-swatch" style="border-color: {{ preexisting }}; outline-color: {{ casing }}"></i>
    pre-existing (dug by the end of the baseline)</div>
  {% if low_certainty %}
  <div class="kpgeo-legend-low"><i class="kpgeo-swatch kpgeo-dashed" style="border-color: {{ preexisting }}; outline-color: {{ casing }}"></i>
    pre-existing, {{ not_seen }} by the baseline: less certain</div>
  {% endif %}
  {% if gradient %}
  <div>new, first detected {{ legend[0][0] }} &#8230; {{ legend[-1][0] }}</div>
  <div class="kpgeo-bar-scale" style="background: {{ gradient }}"></div>
  {% else %}
  {% for label, colour in legend %}
  <div><i class="kpgeo-swatch" style="border-color: {{ colour }}; outline-color: {{ casing }}"></i>new, first detected
    {{ label }}</div>
  {% endfor %}
  {% endif %}
  {% if not legend %}<div class="kpgeo-muted">no new digging mapped yet</div>{% endif %}
  {% if not measured %}
  <div class="kpgeo-muted kpgeo-not-measured">not measured this month:
    {% if measured_month %}the areas as measured in {{ measured_month }}{% else %}no month
    measured yet{% endif %}</div>
  {% elif increment_areas %}
  <div class="kpgeo-increment-entry"><i class="kpgeo-swatch kpgeo-increment-swatch"></i>grew or
    appeared this month: {{ "%.2f"|format(increment_ha) }} ha in {{ increment_areas }}
    area{{ "s" if increment_areas != 1 }}</div>
  {% else %}
  <div class="kpgeo-muted kpgeo-increment-entry">no new digging this month</div>
  {% endif %}
  {% if evidence %}<div class="kpgeo-evidence">{{ evidence }}</div>{% endif %}
  {% if coverage %}<div class="kpgeo-coverage">{{ coverage }}</div>{% endif %}
  {% if radar %}
  <h2>Radar (Sentinel-1)</h2>
  <div class="kpgeo-legend-radar"><i class="kpgeo-swatch kpgeo-fill" style="background: {{ radar }}"></i>
    new digging radar alone dated, in months clouds hid from optical imagery: to be confirmed
    or withdrawn by a clear optical view (layer &#8220;{{ radar_layer }}&#8221;)</div>
  {% if radar_withdrawn %}
  <div class="kpgeo-legend-radar-withdrawn"><i class="kpgeo-swatch kpgeo-fill" style="background: {{ radar_withdrawn }}"></i>
    radar finding withdrawn: a later clear optical view saw no digging there</div>
  {% endif %}
  {% endif %}
  <h2>Imagery</h2>
  {% if outline %}
  <div class="kpgeo-legend-outline"><i class="kpgeo-swatch kpgeo-line" style="border-color: {{ outline }}; outline-color: {{ casing }}"></i>
    site outline</div>
  {% endif %}
  <div class="kpgeo-legend-no-view"><i class="kpgeo-swatch kpgeo-fill" style="background: {{ hatch }}"></i>
    no clear view in the month shown (cloud-masked)</div>
  <h2>Change score</h2>
  <div class="kpgeo-bar-scale" style="background: {{ change_gradient }}"></div>
  <div class="kpgeo-scale-ends"><span>{{ change_low }}</span>
    <span>NDVI drop below baseline</span><span>{{ change_high }}+</span></div>
  {% if not has_baseline %}
  <div class="kpgeo-muted">baseline {{ baseline_month }}: no composite to show</div>
  {% endif %}
</section>
<div id="kpgeo-tiles-note" class="kpgeo-note" role="status" title="click to hide" hidden>
  {{- tiles_note -}}
</div>
""")

_END = _ENV.from_string("""
<script>
var KPGEO = {{ data }};
{{ map }}.fitBounds(KPGEO.bounds, {animate: false});
kpgeoOutlines({{ map }}, {{ digging }});
{{ digging }}.addData(KPGEO.areas);
kpgeoIncrementPane({{ map }}, KPGEO.increment_pane);
{{ increment }}.addData(KPGEO.increments);
{{ tiles }}.on("tileerror", kpgeoTilesFailed);
{{ map }}.attributionControl.setPrefix(false);
</script>
""")


def head(site_title: str, month: str, icon_script: str = "", synthetic: str = "") -> str:
    """``<head>`` additions: title (``synthetic``: the label it starts with, if any), style,
    and the functions the map's layers call."""
    return _HEAD.render(title=site_title, month=month, style=_STYLE, script=_SCRIPT,
                        icons=Markup(icon_script), synthetic=synthetic)


def body(**values: Any) -> str:
    """The title bar, legend and basemap note; ``values`` as the template names them."""
    return _BODY.render(watermark=watermark_css(str(values.get("synthetic") or "")), **values)


def watermark_css(label: str) -> str:
    """A CSS ``url()`` of an SVG tile of ``label``, rotated: the watermark of a synthetic map,
    repeated over all of it (a data URI: the page stays offline)."""
    svg = ("<svg xmlns='http://www.w3.org/2000/svg' width='360' height='220'>"
           "<text x='180' y='120' text-anchor='middle' transform='rotate(-25 180 110)' "
           "font-family='Arial, sans-serif' font-size='30' font-weight='700' fill='#ffd400' "
           f"stroke='#111' stroke-width='1'>{html.escape(label)}</text></svg>")
    return f'url("data:image/svg+xml,{urllib.parse.quote(svg, safe=" =/:,.()-")}")'


def end_script(data: Mapping[str, Any], *, map_name: str, digging_name: str,
               increment_name: str, tiles_name: str) -> str:
    """The script after folium's: page data (``KPGEO``, with the digging areas, the month's
    increment and the image ``bounds``), the map fitted to the site without animation (a zoom
    animation still running would draw the images and the areas at different scales for a
    moment), the areas and the increment (in its own pane, above them) added to their (empty)
    GeoJSON layers, and the tile-failure note hooked up.

    ``*_name`` are folium's JavaScript variable names (``element.get_name()``). Before the
    areas are added, ``kpgeoOutlines`` makes the panes of the outlines and draws the casings
    and the site outline (``data``: ``outline``, ``casing``, ``panes``...).
    """
    return _END.render(data=Markup(json_for_script(dict(data))), map=Markup(map_name),
                       digging=Markup(digging_name), increment=Markup(increment_name),
                       tiles=Markup(tiles_name))


def assemble(rendered: str, *, head_html: str, body_html: str, end_html: str,
             images: Mapping[str, str]) -> str:
    """Insert kpgeo's parts into folium's rendered page, and the images for their
    placeholder URLs (images are large: folium would compile each as a template).

    Raises
    ------
    AssertionError
        If folium's page no longer has the expected shape (a folium or branca upgrade).
    """
    page = _replace_once(rendered, _HEAD_END, head_html + _HEAD_END)
    page = _replace_once(page, _BODY_START, _BODY_START + body_html)
    page = _replace_once(page, _PAGE_END, "</script>\n" + end_html + "</html>")
    for placeholder, uri in images.items():
        page = _replace_once(page, f'"{placeholder}"', f'"{uri}"')
    return page


def _replace_once(page: str, old: str, new: str) -> str:
    assert page.count(old) == 1, f"folium's page has {page.count(old)} of {old!r}, not one"
    return page.replace(old, new)


def summary_text(features: Sequence[Mapping[str, Any]], measured: bool = True,
                 measured_month: str | None = None) -> str:
    """``"12 digging areas: 3.10 ha pre-existing, 4.20 ha new since the baseline, 0.85 ha of
    it this month"``; for a month not measured, ``"not measured this month; as measured in
    2024-03, 12 digging areas: ..."``, nothing of the month's own."""
    def total(status: str, key: str) -> float:
        return sum(float((f.get("properties") or {}).get(key) or 0) for f in features
                   if (f.get("properties") or {}).get("status") == status)

    areas = (f"{len(features)} digging area{'s' if len(features) != 1 else ''}: "
             f"{total('preexisting', 'area_ha'):.2f} ha pre-existing, "
             f"{total('new', 'area_ha'):.2f} ha new since the baseline")
    if not measured:
        if measured_month is None:
            return "not measured this month; no month measured yet"
        return f"not measured this month; as measured in {measured_month}, {areas}"
    return f"{areas}, {total('new', 'new_ha_this_month'):.2f} ha of it this month"


#: What a digging area's ``evidence`` says, in the legend's words (kpgeo.methods.polygons).
EVIDENCE_WORDS = {"radar": "on Sentinel-1 radar alone", "optical+radar": "partly on radar"}


def evidence_text(features: Sequence[Mapping[str, Any]]) -> str:
    """``"resting on radar: 2 areas on Sentinel-1 radar alone, 1 partly on radar"``; empty
    when every area rests on optical imagery."""
    counts = {key: sum(1 for f in features if (f.get("properties") or {}).get("evidence") == key)
              for key in EVIDENCE_WORDS}
    parts = [f"{n} area{'s' if n != 1 else ''} {EVIDENCE_WORDS[key]}"
             for key, n in counts.items() if n]
    return f"resting on radar: {', '.join(parts)}" if parts else ""


def seasons_text(seasons_min: int, seen: str = "seen") -> str:
    """``"seen in every season"`` (``seasons_min`` 12), else ``"seen in at least 10 of the
    12 seasons"``; ``seen`` may be ``"not seen"``, which the sentence follows."""
    if seasons_min >= SEASONS:
        return f"{seen} in every season"
    return (f"seen in fewer than {seasons_min} of the {SEASONS} seasons" if seen == "not seen"
            else f"{seen} in at least {seasons_min} of the {SEASONS} seasons")


def coverage_text(coverage: Mapping[str, Any]) -> str:
    """How well the baseline saw the site (a site's ``baseline_coverage``, with the
    ``baseline`` months): ``"Baseline 2023-01..2023-12: 11 of 12 months seen; 92% of the site
    seen in every season (a calendar month or one beside it)"``."""
    baseline = f" {coverage['baseline']}" if coverage.get("baseline") else ""
    share = float(coverage.get("seen_share") or 0) * 100
    seasons = seasons_text(int(coverage.get("seasons_min") or SEASONS))
    return (f"Baseline{baseline}: {coverage.get('months_seen', '?')} of "
            f"{coverage.get('months', '?')} months seen; {share:.0f}% of the site {seasons} "
            "(a calendar month or one beside it)")


def status_text(status: Mapping[str, str]) -> tuple[str, str]:
    """``(status, text)`` of a month from its composite's tags."""
    state = status.get("status", "unknown")
    text = (f"{state}: {status.get('scenes', '?')} scenes, "
            f"{float(status.get('valid_pct', 0) or 0):.0f}% of the site seen")
    if state == "gap":
        text += "; too little seen to measure this month"
    elif state == "radar":
        text += ("; clouds: new digging measured by Sentinel-1 radar alone, to be confirmed "
                 "or withdrawn by the next clear month")
    return state, text
