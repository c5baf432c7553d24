// The admin's fence map (apps/geofences/widgets.py, docs/geofences.md "Admin map").
// The textarea holds the GeoJSON and is what the form posts; this script shows it on a
// Leaflet map and lets the creator draw or edit a polygon, writing the result back.
(function () {
  "use strict";

  function parse(text) {
    if (!text || !text.trim()) return null;
    try {
      var value = JSON.parse(text);
      if (value && value.type === "Feature") value = value.geometry;
      return value && (value.type === "Polygon" || value.type === "MultiPolygon") ? value : null;
    } catch (e) {
      return null;
    }
  }

  function circleFields() {
    var lon = document.getElementById("id_center_lon");
    var lat = document.getElementById("id_center_lat");
    var radius = document.getElementById("id_radius_m");
    var kind = document.getElementById("id_fence_kind");
    if (!lon || !lat || !radius || !kind || kind.value !== "circle") return null;
    var c = [parseFloat(lat.value), parseFloat(lon.value)];
    var r = parseFloat(radius.value);
    return isFinite(c[0]) && isFinite(c[1]) && isFinite(r) ? { center: c, radius: r } : null;
  }

  function setUp(element) {
    var textarea = document.getElementById(element.dataset.textarea);
    var map = L.map(element, { attributionControl: !!element.dataset.attribution });
    // A view before any layer is added: a circle needs the map's zoom to measure its
    // bounds, so a saved circle venue drawn first thing would otherwise throw.
    map.setView([20, 0], 2);
    if (element.dataset.tileUrl) {
      L.tileLayer(element.dataset.tileUrl, { maxZoom: 20, attribution: element.dataset.attribution }).addTo(map);
    }
    var drawn = new L.FeatureGroup().addTo(map);

    function show() {
      drawn.clearLayers();
      var geometry = parse(textarea.value);
      if (geometry) {
        L.geoJSON(geometry, { style: { color: "#d33", weight: 2 } }).eachLayer(function (layer) {
          drawn.addLayer(layer);
        });
      }
      var circle = circleFields();
      if (circle) drawn.addLayer(L.circle(circle.center, { radius: circle.radius, color: "#d33" }));
      var bounds = drawn.getBounds();
      if (bounds.isValid()) map.fitBounds(bounds, { padding: [20, 20], maxZoom: 18 });
      else map.setView([20, 0], 2);
      element.dataset.layers = String(drawn.getLayers().length);
    }

    function save() {
      var polygons = [];
      drawn.eachLayer(function (layer) {
        if (!(layer instanceof L.Polygon)) return;
        var g = layer.toGeoJSON().geometry;
        if (g.type === "Polygon") polygons.push(g.coordinates);
        else if (g.type === "MultiPolygon") polygons = polygons.concat(g.coordinates);
      });
      var geometry = polygons.length === 0 ? null
        : polygons.length === 1 ? { type: "Polygon", coordinates: polygons[0] }
          : { type: "MultiPolygon", coordinates: polygons };
      textarea.value = geometry ? JSON.stringify(geometry) : "";
      var kind = document.getElementById("id_fence_kind");
      if (geometry && kind) kind.value = "polygon";
    }

    if (L.Control && L.Control.Draw) {
      map.addControl(new L.Control.Draw({
        draw: { polygon: { allowIntersection: false, showArea: false }, rectangle: true,
                polyline: false, circle: false, marker: false, circlemarker: false },
        edit: { featureGroup: drawn },
      }));
      map.on(L.Draw.Event.CREATED, function (event) { drawn.addLayer(event.layer); save(); });
      map.on(L.Draw.Event.EDITED, save);
      map.on(L.Draw.Event.DELETED, save);
    }
    textarea.addEventListener("change", show);
    ["id_center_lon", "id_center_lat", "id_radius_m", "id_fence_kind"].forEach(function (id) {
      var field = document.getElementById(id);
      if (field) field.addEventListener("change", show);
    });
    show();
    element.dataset.ready = "1";
  }

  function start() {
    if (typeof L === "undefined") return;
    document.querySelectorAll("[data-fence-map]").forEach(setUp);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
