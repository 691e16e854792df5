/* kpgeo map pages (kpgeo/maps.py, kpgeo/map_page.py). Values from files go into the page with
   textContent only, never as HTML, so a title or id holding markup shows as text. KPGEO, the
   page's data, is set at the end of the page; these functions read it when called. */
function kpgeoPopup(p) {
  var box = document.createElement("div");
  box.className = "kpgeo-popup";
  var title = document.createElement("div");
  title.className = "kpgeo-popup-title";
  title.textContent = KPGEO.title;
  box.appendChild(title);
  var status = p.status === "preexisting" ? "pre-existing (dug by the end of the baseline)"
    : p.status === "new" ? "new digging" : String(p.status);
  var area = typeof p.area_ha === "number" ? p.area_ha.toFixed(2) + " ha" : "\u2014";
  /* The month's increment: null in a month not measured (unknown, not zero). */
  var increment = typeof p.new_ha_this_month === "number"
    ? p.new_ha_this_month.toFixed(2) + " ha" : "not measured this month";
  var rows = [["id", p.id], ["status", status], ["area", area],
              ["new this month", increment],
              ["first detected", p.first_detected || "\u2014"],
              ["confirmed", p.confirmed || "\u2014"]];
  if (p.status === "new" && p.evidence) {
    /* What the area rests on (kpgeo/methods/polygons.py): radar alone until a clear optical
       view confirms or withdraws it. */
    rows.push(["evidence", p.evidence === "radar"
      ? "Sentinel-1 radar alone: to be confirmed or withdrawn by a clear optical view"
      : p.evidence === "optical+radar" ? "optical, and radar alone for part of it"
      : String(p.evidence)]);
  }
  if (p.status === "preexisting" && typeof p.baseline_seasons === "number") {
    /* How much of the year the baseline saw it in (kpgeo/methods/baseline_seasons.py). */
    rows.push(["seen in baseline", p.baseline_seasons + " of 12 seasons"
      + (p.certainty === "low" ? ": less certain" : "")]);
  }
  rows.push(["measured", p.measured_month || "\u2014"]);
  var table = document.createElement("table");
  rows.forEach(function (row) {
    var tr = table.insertRow();
    var th = document.createElement("th");
    th.textContent = row[0];
    tr.appendChild(th);
    tr.insertCell().textContent = row[1] === undefined || row[1] === null ? "\u2014"
      : String(row[1]);
  });
  box.appendChild(table);
  return box;
}

/* Digging areas: their style comes with each feature (kpgeo/maps.py); hovering thickens the
   outline; a click opens the popup. */
function kpgeoStyle(feature) {
  return feature.style || {};
}

function kpgeoBindArea(feature, layer) {
  layer.bindPopup(function () { return kpgeoPopup(feature.properties); }, {maxWidth: 340});
  layer.on({
    mouseover: function () { layer.setStyle(KPGEO.highlight); },
    mouseout: function () { layer.setStyle(kpgeoStyle(feature)); }
  });
}

/* The month's increment is drawn in a pane of its own above the digging areas, so that showing
   them again never covers it; clicks pass through it to the areas below. */
function kpgeoIncrementPane(map, name) {
  var pane = map.createPane(name);
  pane.style.zIndex = 450;
  pane.style.pointerEvents = "none";
}

/* A basemap tile failed: without a network none will load; say that the imagery still works.
   A click hides the note for good (panning makes more tiles fail). */
var kpgeoTilesNoteDismissed = false;
function kpgeoTilesFailed() {
  var note = document.getElementById("kpgeo-tiles-note");
  if (!note || kpgeoTilesNoteDismissed) { return; }
  if (note.hidden) {
    note.hidden = false;
    note.addEventListener("click", function () {
      kpgeoTilesNoteDismissed = true;
      note.hidden = true;
    });
  }
}

/* Outlines that stay visible on any ground (kpgeo/maps.py): the panes of the casings and of
   the coloured outlines, inside the overlay pane so that they lie above its images; a dark
   casing under every digging area, which follows the "Digging areas" layer on and off; and
   the site's outline, white dashes on its own casing. Called before the areas are added. */
function kpgeoOutlines(map, digging) {
  var overlay = map.getPane("overlayPane");
  /* Above every image of the overlay pane (folium gives them z-index 1 or 2), below the
     markers and popups (those panes lie above the overlay pane). */
  [KPGEO.panes.casing, KPGEO.panes.areas].forEach(function (name, i) {
    if (!map.getPane(name)) { map.createPane(name, overlay).style.zIndex = String(1000 + i); }
  });
  var casing = L.geoJSON(KPGEO.areas, {pane: KPGEO.panes.casing, interactive: false,
    style: function (feature) {
      var style = Object.assign({className: "kpgeo-casing"}, KPGEO.casing);
      style.weight = style.weight + ((feature.style || {}).weight || 2) - 2;
      return style;
    }});
  if (map.hasLayer(digging)) { casing.addTo(map); }
  digging.on("add", function () { casing.addTo(map); });
  digging.on("remove", function () { casing.remove(); });
  if (KPGEO.outline) {
    L.geoJSON(KPGEO.outline, {pane: KPGEO.panes.casing, interactive: false,
      style: Object.assign({className: "kpgeo-outline-casing"}, KPGEO.outlineCasing)}).addTo(map);
    L.geoJSON(KPGEO.outline, {pane: KPGEO.panes.areas, interactive: false,
      style: Object.assign({className: "kpgeo-outline"}, KPGEO.outlineStyle)}).addTo(map);
  }
}
