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
              ["confirmed", p.confirmed || "\u2014"],
              ["measured", p.measured_month || "\u2014"]];
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
