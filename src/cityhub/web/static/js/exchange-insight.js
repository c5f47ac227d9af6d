/* The data exchange's decision-support dashboard (progressive enhancement: the tables work without it).
 *
 * #exchange-insight-data   {figures: the JSON of GET /api/v1/exchange/insight, labels: translated names}
 * #insight-use-daily       ECharts line: reads through grants per day
 * #insight-use-resources   bars: reads of the most read resources
 * #insight-use-consumers   bars: reads of the departments reading the most
 * #insight-freshness       stacked bars per provider: fresh, update due, stale
 * #insight-corrections     bars per owner: corrected, not corrected, unanswered, late
 * #insight-downloads       stacked bars per day: open-data reads by channel
 */
(function () {
  "use strict";
  var source = document.getElementById("exchange-insight-data");
  if (!source || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var figures = data.figures;
  var labels = data.labels;
  var english = document.documentElement.lang === "en";
  var charts = [];

  function draw(id, option) {
    var element = document.getElementById(id);
    if (!element) { return; }
    var chart = echarts.init(element);
    chart.setOption(Object.assign({ tooltip: { trigger: "axis" }, grid: { left: 56, right: 16, containLabel: true } }, option));
    charts.push(chart);
  }

  function day(text) { return text.slice(5); }
  function pick(list, key) { return list.map(function (item) { return item[key]; }); }
  function resourceName(row) { return english && row.name_en ? row.name_en : row.name; }

  function ranking(id, rows, names) {
    draw(id, {
      xAxis: { type: "value", minInterval: 1 },
      yAxis: { type: "category", inverse: true, data: names },
      series: [{ name: labels.reads, type: "bar", data: pick(rows, "reads") }]
    });
  }

  function stacked(id, categories, codes, names, value) {
    draw(id, {
      legend: { data: codes.map(function (code) { return names[code]; }) },
      xAxis: { type: "category", data: categories },
      yAxis: { type: "value", minInterval: 1 },
      series: codes.map(function (code) {
        return { name: names[code], type: "bar", stack: "all", data: value(code) };
      })
    });
  }

  var use = figures.use;
  draw("insight-use-daily", {
    xAxis: { type: "category", data: use.daily.map(function (d) { return day(d.day); }) },
    yAxis: { type: "value", minInterval: 1 },
    series: [{ name: labels.reads, type: "line", smooth: true, data: pick(use.daily, "reads") }]
  });
  ranking("insight-use-resources", use.top_resources, use.top_resources.map(resourceName));
  ranking("insight-use-consumers", use.top_consumers, pick(use.top_consumers, "name"));

  var departments = figures.freshness.departments;
  stacked("insight-freshness", pick(departments, "name"), ["fresh", "due", "stale"], labels.freshness,
    function (code) { return pick(departments, code); });

  var owners = figures.corrections.departments;
  draw("insight-corrections", {
    legend: {},
    xAxis: { type: "category", data: pick(owners, "name") },
    yAxis: { type: "value", minInterval: 1 },
    series: ["accepted", "rejected", "open", "late"].map(function (code) {
      return { name: labels.objections[code], type: "bar", data: pick(owners, code) };
    })
  });

  var downloads = figures.downloads;
  var channels = Object.keys(labels.channels);
  stacked("insight-downloads", downloads.daily.map(function (d) { return day(d.day); }), channels, labels.channels,
    function (code) { return downloads.daily.map(function (d) { return d.channels[code] || 0; }); });

  window.addEventListener("resize", function () { charts.forEach(function (chart) { chart.resize(); }); });
})();
