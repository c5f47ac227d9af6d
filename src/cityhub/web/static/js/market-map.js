/* Market maps (progressive enhancement: the shop lists and forms work without them).
 *
 * #market-map[data-map]  a Leaflet map of {"centre": [lon, lat], "radius_m": m, "zoom": z, "stores": [{"name",
 *                        "merchant", "lon", "lat", "url", "open"}]}: a circle for the search radius, a dot per
 *                        shop (green when open) with a popup linking to it.
 * [data-locate]          "Near me": shown when the browser can locate; reloads the search around the position.
 */
(function () {
  "use strict";

  function popup(store) {
    var box = document.createElement("div");
    var title = document.createElement(store.url ? "a" : "strong");
    title.textContent = store.name;
    if (store.url) { title.href = store.url; }
    var merchant = document.createElement("div");
    merchant.textContent = store.merchant;
    box.append(title, merchant);
    return box;
  }

  function startMap(element) {
    var data = JSON.parse(element.dataset.map || "{}");
    if (!data.centre) { return; }
    var centre = L.latLng(data.centre[1], data.centre[0]);
    var map = L.map(element).setView(centre, data.zoom || 14);
    var bounds = L.latLngBounds([centre]);
    if (data.radius_m) {
      var circle = L.circle(centre, { radius: data.radius_m, color: "#0b5cad", weight: 1, fillOpacity: 0.04 }).addTo(map);
      L.circleMarker(centre, { radius: 5, color: "#c25e00", weight: 2, fillColor: "#f08c00", fillOpacity: 1 }).addTo(map);
      bounds = circle.getBounds();
    }
    (data.stores || []).forEach(function (store) {
      var colour = store.open ? "#2b8a3e" : "#5f6b7a";
      L.circleMarker([store.lat, store.lon], { radius: 8, color: "#fff", weight: 2, fillColor: colour, fillOpacity: 0.9 })
        .bindPopup(function () { return popup(store); })
        .addTo(map);
      bounds.extend([store.lat, store.lon]);
    });
    if (data.radius_m) { map.fitBounds(bounds, { maxZoom: 16 }); }
  }

  function startLocate(button) {
    if (!navigator.geolocation) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      navigator.geolocation.getCurrentPosition(
        function (position) {
          var form = button.closest("form");
          var query = new URLSearchParams(new FormData(form));
          query.set("lon", position.coords.longitude.toFixed(6));
          query.set("lat", position.coords.latitude.toFixed(6));
          query.delete("offset");
          window.location.assign(form.action + "?" + query.toString());
        },
        function () { button.disabled = false; },
        { enableHighAccuracy: false, timeout: 10000, maximumAge: 60000 }
      );
    });
  }

  var element = document.getElementById("market-map");
  if (element && typeof L !== "undefined") { startMap(element); }
  document.querySelectorAll("[data-locate]").forEach(startLocate);
})();
