/* Context hub console (progressive enhancement: the tables work without it).
 *
 * #context-map[data-features-url]   a Leaflet map of the entities' GeoJSON, reloaded for the visible area when
 *                                    the view moves; a circle per point, outlines for shapes, a popup linking
 *                                    to the entity page.
 * #context-charts[data-series-url]  one ECharts line chart per numeric attribute of the entity.
 */
(function () {
  "use strict";

  function withParam(url, name, value) {
    return url + (url.indexOf("?") < 0 ? "?" : "&") + name + "=" + encodeURIComponent(value);
  }

  function popup(feature, element) {
    var box = document.createElement("div");
    var title = document.createElement("strong");
    title.textContent = feature.properties.name;
    var kind = document.createElement("div");
    kind.textContent = feature.properties.type;
    var link = document.createElement("a");
    link.textContent = element.dataset.openText;
    link.href = withParam(
      element.dataset.entityUrl + encodeURIComponent(feature.properties.id), "tenant", element.dataset.tenant
    );
    box.append(title, kind, link);
    return box;
  }

  function startMap(element) {
    var map = L.map(element, { preferCanvas: false });
    if (element.dataset.tiles) {
      L.tileLayer(element.dataset.tiles, { maxZoom: 19, attribution: element.dataset.attribution }).addTo(map);
    }
    var layer = L.geoJSON(null, {
      pointToLayer: function (feature, latlng) {
        return L.circleMarker(latlng, { radius: 7, color: "#08457f", weight: 2, fillColor: "#1c7ed6", fillOpacity: 0.8 });
      },
      style: function (feature) {
        return feature.geometry.type === "Point" ? {} : { color: "#c25e00", weight: 2, fillOpacity: 0.15 };
      },
      onEachFeature: function (feature, shape) { shape.bindPopup(function () { return popup(feature, element); }); },
    }).addTo(map);
    var note = document.getElementById("context-map-note");
    var generation = 0;

    function load(bbox, fit) {
      var url = bbox ? withParam(element.dataset.featuresUrl, "bbox", bbox) : element.dataset.featuresUrl;
      var mine = ++generation;
      return fetch(url, { headers: { Accept: "application/geo+json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (collection) {
          if (!collection || mine !== generation) { return; }
          layer.clearLayers();
          layer.addData(collection);
          if (note) { note.textContent = collection.truncated ? element.dataset.truncatedText : ""; }
          if (fit) {
            var bounds = layer.getBounds();
            if (bounds.isValid()) { map.fitBounds(bounds.pad(0.1), { maxZoom: 16 }); } else { map.setView([30.25, 120.2], 12); }
            map.on("moveend", function () { load(map.getBounds().toBBoxString(), false); });
          }
          element.dataset.loaded = String(collection.features.length);
        });
    }

    load(null, true);
  }

  function number(value) {
    return Math.round(value * 100) / 100;
  }

  function chartOf(holder, series) {
    var box = document.createElement("div");
    box.className = "context-chart";
    box.dataset.attribute = series.name;
    holder.append(box);
    var chart = echarts.init(box, null, { renderer: "svg" });
    chart.setOption({
      title: { text: series.name + (series.unit ? " (" + series.unit + ")" : ""), left: 0, textStyle: { fontSize: 14 } },
      grid: { left: 48, right: 16, top: 40, bottom: 32 },
      tooltip: { trigger: "axis", valueFormatter: number },
      xAxis: { type: "time" },
      yAxis: { type: "value", scale: true },
      series: [{ type: "line", showSymbol: false, smooth: true, data: series.points, areaStyle: { opacity: 0.08 } }],
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  function startCharts(holder) {
    fetch(holder.dataset.seriesUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error(String(response.status)); }
        return response.json();
      })
      .then(function (answer) {
        var drawn = answer.series.filter(function (series) { return series.points.length > 0; });
        drawn.forEach(function (series) { chartOf(holder, series); });
        if (!drawn.length) { holder.textContent = holder.dataset.emptyText; }
        holder.dataset.loaded = String(drawn.length);
      })
      .catch(function () { holder.textContent = holder.dataset.errorText; });
  }

  var mapElement = document.getElementById("context-map");
  if (mapElement && window.L) { startMap(mapElement); }
  var charts = document.getElementById("context-charts");
  if (charts && window.echarts) { startCharts(charts); }
})();
