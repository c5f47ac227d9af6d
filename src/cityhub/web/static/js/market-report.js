/* The merchant's coupon report (progressive enhancement: the table works without it).
 *
 * #market-report-data   the chart's figures, embedded by the page:
 *                       {group: "day"|"batch"|"store", labels: [...], series: [{kind, name, data: [...]}]}
 * #market-report-chart  ECharts: per day, lines of views, claims and redemptions; per batch or store, bars
 *                       of claims and redemptions
 */
(function () {
  "use strict";
  var source = document.getElementById("market-report-data");
  var element = document.getElementById("market-report-chart");
  if (!source || !element || typeof echarts === "undefined") { return; }
  var data = JSON.parse(source.textContent);
  var daily = data.group === "day";
  var chart = echarts.init(element);
  chart.setOption({
    tooltip: { trigger: "axis" },
    legend: { data: data.series.map(function (s) { return s.name; }) },
    grid: { left: 48, right: 16, bottom: daily ? 32 : 64 },
    xAxis: {
      type: "category",
      data: daily ? data.labels.map(function (day) { return day.slice(5); }) : data.labels,
      axisLabel: daily ? {} : { interval: 0, rotate: data.labels.length > 6 ? 30 : 0 }
    },
    yAxis: { type: "value", minInterval: 1 },
    series: data.series.map(function (s) {
      return daily
        ? { name: s.name, type: "line", smooth: true, data: s.data }
        : { name: s.name, type: "bar", data: s.data };
    })
  });
  window.addEventListener("resize", function () { chart.resize(); });
})();
