// The analysts' dashboard: renders the data embedded in the page, then follows
// /api/stream (server-sent events) and re-renders on every change. No dependencies.
(function () {
  "use strict";
  var LANG = document.documentElement.lang === "en" ? "en" : "fa";
  var TEXT = {
    fa: {
      people_authenticated: "افراد احراز هویت‌شده",
      adult_share: "سهم از جمعیت بزرگسال",
      transactions: "تراکنش‌های تبادل اطلاعات (کل)",
      transactions_day: "تراکنش‌های تبادل در روز",
      latency_p95_day: "زمان پاسخ (صدک ۹۵)",
      electronic_share: "خدمات الکترونیکی",
      smart_share: "خدمات هوشمند",
      agencies_window_share: "دستگاه‌های متصل به پنجره",
      agencies_exchange_share: "دستگاه‌های بهره‌بردار از مرکز تبادل در این فصل",
      signins_day: "ورودها در روز",
      digital_share_day: "سهم ارائه برخط",
      in_person_vs_baseline_day: "مراجعه حضوری نسبت به مبنا",
      transactions_per_minute: "تراکنش‌ها در دقیقه",
      transactions_per_day: "تراکنش‌ها در روز",
      signins_per_day: "ورودها در روز",
      deliveries_per_day: "ارائه خدمت در روز",
      agencies: "دستگاه‌ها",
      provinces: "استان‌ها",
      agency: "دستگاه",
      province: "استان",
      requests_sent: "درخواست‌های ارسالی",
      requests_answered_for: "درخواست‌های دریافتی",
      refusals: "امتناع",
      denials: "رد دسترسی",
      services: "خدمات",
      deliveries: "ارائه خدمت",
      digital_share: "سهم برخط",
      people: "احراز هویت‌شدگان",
      adults: "بزرگسالان",
      adult_population: "جمعیت بزرگسال (برآورد)",
      updated: "به‌روزرسانی:",
      live: "زنده",
      offline: "قطع",
      no_data: "هنوز داده‌ای نیست",
      ms: "میلی‌ثانیه",
      source: "منبع جمعیت:",
      programme_targets: "اهداف برنامه",
      provinces_reports: "گزارش‌های هفتگی استان‌ها",
      evaluations: "ارزیابی فصلی دستگاه‌ها",
      version: "نسخه"
    },
    en: {
      people_authenticated: "People authenticated",
      adult_share: "Share of adults",
      transactions: "Exchange transactions (all time)",
      transactions_day: "Exchange transactions per day",
      latency_p95_day: "Response time (p95)",
      electronic_share: "Services electronic",
      smart_share: "Services smart",
      agencies_window_share: "Agencies in the window",
      agencies_exchange_share: "Agencies using the exchange this quarter",
      signins_day: "Sign-ins per day",
      digital_share_day: "Delivered online",
      in_person_vs_baseline_day: "In-person visits vs baseline",
      transactions_per_minute: "Transactions per minute",
      transactions_per_day: "Transactions per day",
      signins_per_day: "Sign-ins per day",
      deliveries_per_day: "Deliveries per day",
      agencies: "Agencies",
      provinces: "Provinces",
      agency: "Agency",
      province: "Province",
      requests_sent: "Requests sent",
      requests_answered_for: "Requests received",
      refusals: "Refusals",
      denials: "Denials",
      services: "Services",
      deliveries: "Deliveries",
      digital_share: "Online share",
      people: "People authenticated",
      adults: "Adults",
      adult_population: "Adult population (estimate)",
      updated: "Updated:",
      live: "live",
      offline: "offline",
      no_data: "No data yet",
      ms: "ms",
      source: "Population source:",
      programme_targets: "Programme targets",
      provinces_reports: "Provinces' weekly reports",
      evaluations: "Quarterly evaluation of agencies",
      version: "version"
    }
  };
  var T = TEXT[LANG];
  var PERSIAN = "۰۱۲۳۴۵۶۷۸۹";

  function localDigits(text) {
    if (LANG !== "fa") return text;
    return String(text).replace(/[0-9]/g, function (d) { return PERSIAN[+d]; })
      .replace(/,/g, "٬").replace(/\./g, "٫").replace(/%/g, "٪");
  }

  function grouped(value, decimals) {
    var fixed = Number(value).toFixed(decimals);
    var parts = fixed.split(".");
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return parts.join(".");
  }

  function format(value, unit) {
    if (value === null || value === undefined) return "—";
    if (unit === "ratio") return localDigits(grouped(value * 100, 1) + "%");
    if (unit === "milliseconds") return localDigits(grouped(value, 0)) + " " + T.ms;
    return localDigits(grouped(value, 0));
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function renderHeadline(items) {
    var box = document.getElementById("headline");
    box.textContent = "";
    items.forEach(function (item) {
      var card = el("div", { "class": "card", "data-metric": item.id });
      card.appendChild(el("div", { "class": "label" }, T[item.id] || item.id));
      card.appendChild(el("div", { "class": "value" }, format(item.value, item.unit)));
      card.appendChild(el("div", { "class": "window" },
        item.window_label && item.window_label !== "all" ? localDigits(item.window_label) : ""));
      box.appendChild(card);
    });
  }

  var SVG = "http://www.w3.org/2000/svg";
  function svgEl(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function renderChart(id, points) {
    document.getElementById("cap-" + id).textContent = T[id] || id;
    var box = document.getElementById("chart-" + id);
    box.textContent = "";
    if (!points.length) { box.appendChild(el("div", { "class": "empty" }, T.no_data)); return; }
    var w = 560, h = 160, left = 48, bottom = 22, top = 8;
    var max = Math.max.apply(null, points.map(function (p) { return p.value; })) || 1;
    var svg = svgEl("svg", { viewBox: "0 0 " + w + " " + h, role: "img", "aria-label": T[id] || id });
    svg.appendChild(svgEl("line", { x1: left, y1: h - bottom, x2: w, y2: h - bottom, stroke: "#d9dee8" }));
    var step = (w - left - 8) / Math.max(points.length, 1);
    points.forEach(function (p, i) {
      var height = (h - bottom - top) * (p.value / max);
      var bar = svgEl("rect", { x: left + i * step + 1, y: h - bottom - height,
        width: Math.max(step - 2, 1), height: height, fill: "#0b6e4f" });
      var tip = svgEl("title", {});
      tip.textContent = localDigits(p.label) + ": " + format(p.value, "count");
      bar.appendChild(tip);
      svg.appendChild(bar);
    });
    var top_label = svgEl("text", { x: left - 4, y: top + 10, "text-anchor": "end", "font-size": 11, fill: "#5b6475" });
    top_label.textContent = format(max, "count");
    svg.appendChild(top_label);
    [0, points.length - 1].forEach(function (i) {
      var t = svgEl("text", { x: left + i * step + step / 2, y: h - 6, "text-anchor": i ? "end" : "start",
        "font-size": 11, fill: "#5b6475" });
      t.textContent = localDigits(points[i].label);
      svg.appendChild(t);
    });
    box.appendChild(svg);
  }

  function renderTable(id, columns, rows, nameOf) {
    var table = document.getElementById(id);
    var head = table.querySelector("thead"), body = table.querySelector("tbody");
    head.textContent = ""; body.textContent = "";
    var tr = el("tr");
    columns.forEach(function (c) { tr.appendChild(el("th", { scope: "col" }, T[c[0]] || c[0])); });
    head.appendChild(tr);
    rows.forEach(function (row) {
      var line = el("tr", { "data-key": row.code || row.agency });
      columns.forEach(function (c, i) {
        if (i === 0) { line.appendChild(el("th", { scope: "row" }, nameOf(row))); return; }
        line.appendChild(el("td", { "class": "num" }, format(row[c[0]], c[1])));
      });
      body.appendChild(line);
    });
  }

  function render(data) {
    renderHeadline(data.headline);
    Object.keys(data.series).forEach(function (id) { renderChart(id, data.series[id]); });
    document.getElementById("agencies-title").textContent = T.agencies;
    document.getElementById("provinces-title").textContent = T.provinces;
    renderTable("agencies", [["agency"], ["requests_sent", "count"], ["requests_answered_for", "count"],
      ["refusals", "count"], ["denials", "count"], ["services", "count"], ["electronic_share", "ratio"],
      ["smart_share", "ratio"], ["deliveries", "count"], ["digital_share", "ratio"]],
      data.agencies, function (row) { return row.agency; });
    renderTable("provinces", [["province"], ["people", "count"], ["adults", "count"],
      ["adult_population", "count"], ["adult_share", "ratio"], ["deliveries", "count"],
      ["digital_share", "ratio"]],
      data.provinces, function (row) { return LANG === "fa" ? row.name_fa : row.name_en; });
    document.getElementById("updated").textContent = T.updated + " " + localDigits(data.generated_at_jalali);
    document.getElementById("source").textContent = T.source + " " + data.reference.source +
      " (" + T.version + " " + localDigits(String(data.reference.version)) + ")";
    document.body.setAttribute("data-rendered", data.generated_at);
  }

  document.getElementById("programme-link").textContent = T.programme_targets;
  document.getElementById("provinces-link").textContent = T.provinces_reports;
  document.getElementById("evaluations-link").textContent = T.evaluations;
  render(JSON.parse(document.getElementById("initial").textContent));
  if (window.EventSource) {
    var live = document.getElementById("live");
    var stream = new EventSource("/api/stream");
    stream.addEventListener("open", function () { live.className = "live on"; live.title = T.live; });
    stream.addEventListener("error", function () { live.className = "live"; live.title = T.offline; });
    stream.addEventListener("dashboard", function (event) { render(JSON.parse(event.data)); });
  }
})();
