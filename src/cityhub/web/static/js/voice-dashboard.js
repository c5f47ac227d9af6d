/* The 12345 assessment dashboard (progressive enhancement: the tables work without it).
 *
 * #voice-assessment-data  the page's figures (the JSON of GET /api/v1/voice/assessment), embedded
 * #voice-trend            ECharts lines: received and closed per day
 * #voice-categories       ECharts bars: received per top-level category
 * #voice-heat             Leaflet map, no tiles (works offline): one circle per community at its centre, sized
 *                         and coloured from pale yellow to dark red by its share of the busiest community
 */
(function () {
  "use strict";
  var source = document.getElementById("voice-assessment-data");
  if (!source) { return; }
  var data = JSON.parse(source.textContent);
  var labels = document.getElementById("voice-labels").dataset;
  var english = labels.locale === "en";

  function heat(share) {
    // 0 -> #ffe066 (pale yellow), 1 -> #a51111 (dark red)
    var mix = function (from, to) { return Math.round(from + (to - from) * share); };
    return "rgb(" + mix(255, 165) + "," + mix(224, 17) + "," + mix(102, 17) + ")";
  }

  function charts() {
    if (typeof echarts === "undefined") { return; }
    var trend = document.getElementById("voice-trend");
    if (trend) {
      echarts.init(trend).setOption({
        tooltip: { trigger: "axis" },
        legend: { data: [labels.received, labels.closed] },
        grid: { left: 48, right: 16 },
        xAxis: { type: "category", data: data.daily.map(function (d) { return d.day.slice(5); }) },
        yAxis: { type: "value", minInterval: 1 },
        series: [
          { name: labels.received, type: "line", smooth: true, data: data.daily.map(function (d) { return d.received; }) },
          { name: labels.closed, type: "line", smooth: true, data: data.daily.map(function (d) { return d.closed; }) }
        ]
      });
    }
    var categories = document.getElementById("voice-categories");
    if (categories) {
      echarts.init(categories).setOption({
        tooltip: {},
        grid: { left: 120, right: 16 },
        xAxis: { type: "value", minInterval: 1 },
        yAxis: {
          type: "category", inverse: true,
          data: data.categories.map(function (c) { return english ? c.name_en : c.name; })
        },
        series: [{ name: labels.received, type: "bar", data: data.categories.map(function (c) { return c.received; }) }]
      });
    }
  }

  function map() {
    var element = document.getElementById("voice-heat");
    if (!element || typeof L === "undefined") { return; }
    var view = L.map(element);
    var layer = L.featureGroup().addTo(view);
    var most = Math.max.apply(null, [1].concat(data.communities.map(function (place) { return place.received; })));
    data.communities.forEach(function (place) {
      var share = place.received / most;
      L.circleMarker([place.lat, place.lon], {
        radius: 8 + 22 * Math.sqrt(share), stroke: true, color: heat(share), weight: 1,
        fillColor: heat(share), fillOpacity: 0.35 + 0.5 * share
      }).bindTooltip(
        place.name + " · " + labels.received + ": " + place.received + " · " + labels.closed + ": " + place.closed
      ).addTo(layer);
    });
    if (data.communities.length) { view.fitBounds(layer.getBounds().pad(0.2)); } else { view.setView([30.25, 120.2], 11); }
  }

  charts();
  map();
})();
