/*
 * Tollgate's dashboard page: reads the report the gateway (or `tollgate
 * report --format html`) inlined as JSON in #tollgate-data and draws the
 * figures and charts. Every figure is written with textContent from the
 * JSON's own exact text, so the page shows what the JSON report says and
 * a task name can never become markup. Charts use uPlot when the bundle
 * has it; without it the tables still show every figure.
 */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("tollgate-data").textContent);
  var app = document.getElementById("app");
  var COLORS = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed",
                "#0891b2", "#be185d", "#4d7c0f", "#9a3412", "#475569"];

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  /* Exact decimal text without trailing zeros: "0.001230000000" is
   * "0.00123", the same number. */
  function trim(text) {
    if (text.indexOf(".") < 0) return text;
    text = text.replace(/0+$/, "");
    return text.replace(/\.$/, "");
  }

  function usd(text) {
    return text === null || text === undefined ? "n/a" : "$" + trim(text);
  }

  function rate(value) {
    if (value === null || value === undefined) return "n/a";
    return (Math.round(Number(value) * 1000) / 10).toFixed(1) + "%";
  }

  /* A figure: its exact value in data-value, for tests and tools. */
  function figure(name, value, shown) {
    var node = el("span", {"class": "figure", "data-figure": name}, shown);
    node.setAttribute("data-value", value === null ? "null" : String(value));
    return node;
  }

  function windowText(w) {
    if (!w) return "all outcomes";
    var since = w.since || "the first outcome";
    var until = w.until || "now";
    return since + " to " + until;
  }

  function header(report) {
    var h = el("header");
    h.appendChild(el("h1", {}, "Cost per useful outcome"));
    h.appendChild(el("p", {"class": "window"}, "Window: " +
                      windowText(report.window)));
    return h;
  }

  function kpi(label, name, value, shown, previous) {
    var box = el("div", {"class": "kpi"});
    box.appendChild(el("div", {"class": "kpi-label"}, label));
    box.appendChild(figure(name, value, shown));
    if (previous !== undefined)
      box.appendChild(el("div", {"class": "kpi-prev"}, "before: " + previous));
    return box;
  }

  function kpis(report) {
    var t = report.total, p = report.previous_total;
    var row = el("section", {"class": "kpis"});
    row.appendChild(kpi("Spend", "total.spend_usd", t.spend_usd,
                        usd(t.spend_usd), p ? usd(p.spend_usd) : undefined));
    row.appendChild(kpi("Useful outcomes", "total.useful", t.useful,
                        String(t.useful) + " of " + t.outcomes,
                        p ? String(p.useful) : undefined));
    row.appendChild(kpi("Cost per useful outcome", "total.cost_per_useful_usd",
                        t.cost_per_useful_usd, usd(t.cost_per_useful_usd),
                        p ? usd(p.cost_per_useful_usd) : undefined));
    row.appendChild(kpi("Rework rate", "total.rework_rate", t.rework_rate,
                        rate(t.rework_rate),
                        p ? rate(p.rework_rate) : undefined));
    row.appendChild(kpi("Checks passed", "total.check_pass_rate",
                        t.check_pass_rate, rate(t.check_pass_rate)));
    row.appendChild(kpi("Retries and escalations", "total.retry_spend_usd",
                        t.retry_spend_usd, usd(t.retry_spend_usd)));
    return row;
  }

  var COLUMNS = [
    ["outcomes", "Outcomes", String],
    ["spend_usd", "Spend", usd],
    ["useful", "Useful", String],
    ["cost_per_useful_usd", "Per useful", usd],
    ["check_pass_rate", "Pass", rate],
    ["feedback_rate", "Feedback", rate],
    ["rework_rate", "Rework", rate],
    ["retry_spend_usd", "Retry spend", usd],
    ["cache_hits", "Cache hits", function (v) {
      return v === null ? "n/a" : String(v);
    }],
    ["trimmed_tokens", "Trimmed tokens", function (v) {
      return v === null ? "n/a" : String(v);
    }]
  ];

  function groupTable(report) {
    var section = el("section", {"class": "panel"});
    var table = el("table", {"id": "groups"});
    var head = el("tr");
    section.appendChild(el("h2", {}, "By task and model"));
    report.group_by.forEach(function (dim) {
      head.appendChild(el("th", {}, dim));
    });
    COLUMNS.forEach(function (c) { head.appendChild(el("th", {}, c[1])); });
    table.appendChild(head);
    report.rows.forEach(function (row, i) {
      var tr = el("tr", {"data-row": String(i)});
      report.group_by.forEach(function (dim) {
        tr.appendChild(el("td", {"class": "key"}, row[dim] || "(none)"));
      });
      COLUMNS.forEach(function (c) {
        var td = el("td", {"class": "num"});
        td.appendChild(figure("rows." + i + "." + c[0], row[c[0]],
                              c[2](row[c[0]])));
        if (row.previous && c[0] === "cost_per_useful_usd")
          td.appendChild(el("div", {"class": "prev"},
                            "before " + usd(row.previous[c[0]])));
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    section.appendChild(table);
    return section;
  }

  function leaksPanel(leaks) {
    var section = el("section", {"class": "panel"});
    section.appendChild(el("h2", {}, "Leaks"));
    (leaks.leaks || []).forEach(function (leak) {
      var box = el("div", {"class": "leak"});
      var title = el("h3", {}, leak.kind + ": ");
      title.appendChild(figure("leaks." + leak.kind, leak.amount_usd,
                               usd(leak.amount_usd)));
      box.appendChild(title);
      box.appendChild(el("p", {"class": "change"}, leak.change));
      box.appendChild(el("p", {"class": "method"}, leak.method));
      section.appendChild(box);
    });
    return section;
  }

  function budgetsPanel(budgets) {
    var section = el("section", {"class": "panel"});
    var table = el("table", {"id": "budgets"});
    section.appendChild(el("h2", {}, "Budgets used"));
    var head = el("tr");
    ["Scope", "Name", "Period", "Spent", "Held", "Limit", "Used"]
      .forEach(function (h) { head.appendChild(el("th", {}, h)); });
    table.appendChild(head);
    budgets.forEach(function (b, i) {
      var tr = el("tr");
      [b.scope, b.name || "(all)", b.period].forEach(function (v) {
        tr.appendChild(el("td", {"class": "key"}, v));
      });
      [["spent_usd", usd], ["held_usd", usd], ["limit_usd", usd],
       ["used_rate", rate]].forEach(function (c) {
        var td = el("td", {"class": "num"});
        td.appendChild(figure("budgets." + i + "." + c[0], b[c[0]],
                              c[1](b[c[0]])));
        tr.appendChild(td);
      });
      table.appendChild(tr);
    });
    section.appendChild(table);
    return section;
  }

  /* Series for a chart: one per value of `dim` over the bucket times. */
  function seriesBy(report, bucket, dim, field) {
    var times = [], index = {}, names = [], values = {};
    report.rows.forEach(function (row) {
      var t = Date.parse(row[bucket]) / 1000;
      if (!(t in index)) { index[t] = times.length; times.push(t); }
      var name = dim ? (row[dim] || "(none)") : "all";
      if (!(name in values)) { values[name] = {}; names.push(name); }
      values[name][t] = row[field] === null ? null : Number(row[field]);
    });
    times.sort(function (a, b) { return a - b; });
    var out = [times];
    names.forEach(function (n) {
      out.push(times.map(function (t) {
        return t in values[n] ? values[n][t] : null;
      }));
    });
    return {data: out, names: names,
            step: bucket === "hour" ? 3600 : 86400};
  }

  function chart(title, id, set, money) {
    var section = el("section", {"class": "panel chart", "id": id});
    section.appendChild(el("h2", {}, title));
    if (typeof uPlot === "undefined" || set.data[0].length === 0) {
      section.appendChild(el("p", {"class": "note"},
                             set.data[0].length ? "Charts need the bundle: " +
                             "make dashboard." : "No outcomes in the window."));
      return section;
    }
    var series = [{}];
    set.names.forEach(function (n, i) {
      series.push({label: n, stroke: COLORS[i % COLORS.length], width: 2,
                   spanGaps: true,
                   value: function (u, v) {
                     return v === null ? "-" : money ? "$" + v.toFixed(6)
                       : (v * 100).toFixed(1) + "%";
                   }});
    });
    /* One bucket alone would stretch the time axis over years: pad it
     * by a bucket each side. Rates start at zero. */
    var times = set.data[0];
    var pad = times.length === 1 ? set.step : 0;
    var opts = {
      width: 560, height: 240, series: series,
      scales: {
        x: {time: true, auto: false,
            range: [times[0] - pad, times[times.length - 1] + pad]},
        y: {range: function (u, min, max) {
          return [0, max > 0 ? max * 1.15 : (money ? 0.000001 : 0.05)];
        }}
      },
      axes: [{}, {size: 90, values: function (u, ticks) {
        return ticks.map(function (v) {
          return money ? "$" + Number(v.toPrecision(3)) : (v * 100)
            .toFixed(0) + "%";
        });
      }}]
    };
    new uPlot(opts, set.data, section);
    return section;
  }

  function charts(d) {
    var grid = el("div", {"class": "charts"});
    var b = d.bucket;
    grid.appendChild(chart("Spend by task", "chart-spend-task",
                           seriesBy(d.by_bucket_task, b, "task",
                                    "spend_usd"), true));
    grid.appendChild(chart("Spend by model", "chart-spend-model",
                           seriesBy(d.by_bucket_model, b, "model",
                                    "spend_usd"), true));
    grid.appendChild(chart("Cost per useful outcome", "chart-cost-useful",
                           seriesBy(d.by_bucket, b, null,
                                    "cost_per_useful_usd"), true));
    grid.appendChild(chart("Rework rate", "chart-rework",
                           seriesBy(d.by_bucket, b, null, "rework_rate"),
                           false));
    return grid;
  }

  app.textContent = "";
  app.appendChild(header(data.report));
  app.appendChild(kpis(data.report));
  app.appendChild(charts(data));
  app.appendChild(groupTable(data.report));
  app.appendChild(leaksPanel(data.leaks));
  if (data.budgets) app.appendChild(budgetsPanel(data.budgets));
  app.appendChild(el("footer", {},
                     "Money is exact to the picodollar; outcomes whose cost " +
                     "is unknown are left out of spend, never counted as $0." +
                     (data.budgets ? "" : " Budgets: shown on the " +
                      "gateway's /dashboard.")));
  document.body.setAttribute("data-ready", "1");
})();
