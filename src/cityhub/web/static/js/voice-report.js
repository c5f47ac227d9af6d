/* Report a problem: a Leaflet map of the city's communities; a tap puts the pin, fills lon/lat and asks for
 * reports of the same problem nearby.
 * Without JavaScript the form still works (the address is enough). */
(function () {
  "use strict";
  var element = document.getElementById("voice-map");
  if (!element || typeof L === "undefined") { return; }
  var lon = document.getElementById("v-lon");
  var lat = document.getElementById("v-lat");
  var map = L.map(element);
  var outlines = L.geoJSON(null, { style: { color: "#08457f", weight: 1, fillOpacity: 0.05 } }).addTo(map);
  JSON.parse(element.dataset.outlines || "[]").forEach(function (unit) {
    outlines.addData({ type: "Feature", geometry: unit.boundary, properties: { name: unit.name } });
  });
  var bounds = outlines.getBounds();
  if (bounds.isValid()) { map.fitBounds(bounds); } else { map.setView([30.25, 120.2], 12); }
  var pin = null;
  function place(latlng) {
    if (pin) { pin.setLatLng(latlng); } else { pin = L.marker(latlng).addTo(map); }
    lon.value = latlng.lng.toFixed(6);
    lat.value = latlng.lat.toFixed(6);
    document.body.dispatchEvent(new CustomEvent("pinned")); // the form asks again for reports nearby
  }
  if (lon.value && lat.value) { place(L.latLng(parseFloat(lat.value), parseFloat(lon.value))); }
  map.on("click", function (event) { place(event.latlng); });
})();
