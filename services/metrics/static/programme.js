// The programme's targets: renders the targets embedded in the page, then polls
// /api/programme/targets every 30 seconds and re-renders when they change. No
// dependencies, no network beyond this service. Every text from the data goes into the
// DOM through textContent or setAttribute, never as markup.
//
// The helpers above `startPage` are pure (no DOM): under node, `require` returns them so
// the tests can check number formatting, Jalali days and chart scaling.
(function () {
  "use strict";

  var POLL_MILLISECONDS = 30000;
  // Worst first: the order of the summary and of the groups of cards.
  var STATUS_ORDER = ["missed", "behind", "at_risk", "no_data", "on_track", "achieved"];

  var TEXT = {
    fa: {
      status: {
        missed: "محقق نشد",
        behind: "عقب از برنامه",
        at_risk: "در معرض خطر",
        no_data: "بدون داده",
        on_track: "در مسیر",
        achieved: "محقق شد"
      },
      summary_title: "وضعیت اهداف",
      summary_total: "{n} هدف از برنامه‌ها و قوانین",
      targets_count: "{n} هدف",
      nationwide: "سراسر کشور",
      province: "استان {name}",
      agency: "دستگاه: {name}",
      baseline_to_target: "از {baseline} در {baseline_date} به {target} تا {deadline}",
      current: "آخرین مقدار: {value} در {day}",
      no_current: "هنوز رقمی برای این هدف نیست",
      projected: "پیش‌بینی در مهلت: {value}",
      trend_up: "روند: افزایش {value} در سال",
      trend_down: "روند: کاهش {value} در سال",
      points_per_year: "{value} واحد درصد",
      progress: "{progress} از مسیر پیموده شده؛ انتظار تا امروز: {expected}",
      progress_none: "پیشرفت: نامعلوم؛ انتظار تا امروز: {expected}",
      progress_label: "پیشرفت به سوی هدف",
      basis: "مبنا:",
      citation: "منبع:",
      evaluated: "ارزیابی در {day}",
      updated: "به‌روزرسانی:",
      live: "متصل",
      offline: "قطع",
      actual: "مقدار واقعی",
      target_path: "مسیر هدف",
      projection: "روند پیش‌بینی‌شده",
      deadline: "مهلت",
      chart_title: "{name}: مقدار واقعی، مسیر هدف و پیش‌بینی",
      chart_desc_actual: "مقدار واقعی از {first} در {first_day} تا {last} در {last_day}.",
      chart_desc_target: "هدف: {target} تا {deadline}.",
      chart_desc_projection: "پیش‌بینی در مهلت: {value}.",
      none: "هیچ هدفی ثبت نشده است.",
      note: "وضعیت: «محقق شد» وقتی آخرین مقدار به هدف برسد؛ «محقق نشد» وقتی مهلت بگذرد و نرسد؛ " +
        "در غیر این صورت روند خطی مقادیر تا مهلت امتداد می‌یابد: «در مسیر» اگر به هدف برسد، " +
        "«در معرض خطر» اگر دست‌کم ۹۰٪ مسیر را بپیماید، وگرنه «عقب از برنامه»."
    },
    en: {
      status: {
        missed: "Missed",
        behind: "Behind",
        at_risk: "At risk",
        no_data: "No data",
        on_track: "On track",
        achieved: "Achieved"
      },
      summary_title: "Where the targets stand",
      summary_total: "{n} targets set by the plans and laws",
      targets_count: "{n} targets",
      targets_count_one: "1 target",
      nationwide: "Nationwide",
      province: "{name} province",
      agency: "Agency: {name}",
      baseline_to_target: "From {baseline} on {baseline_date} to {target} by {deadline}",
      current: "Latest: {value} on {day}",
      no_current: "No figure for this target yet",
      projected: "Projected at the deadline: {value}",
      trend_up: "Trend: rising {value} a year",
      trend_down: "Trend: falling {value} a year",
      points_per_year: "{value} percentage points",
      progress: "{progress} of the way covered; expected by now: {expected}",
      progress_none: "Progress unknown; expected by now: {expected}",
      progress_label: "Progress towards the target",
      basis: "Basis:",
      citation: "Source:",
      evaluated: "Evaluated on {day}",
      updated: "Updated:",
      live: "connected",
      offline: "offline",
      actual: "Actual",
      target_path: "Target path",
      projection: "Projection",
      deadline: "deadline",
      chart_title: "{name}: actual values, target path and projection",
      chart_desc_actual: "Actual from {first} on {first_day} to {last} on {last_day}.",
      chart_desc_target: "Target: {target} by {deadline}.",
      chart_desc_projection: "Projected at the deadline: {value}.",
      none: "No targets are registered.",
      note: "Status: achieved when the latest figure reaches the target; missed when the " +
        "deadline has passed without it; otherwise the figures' straight-line trend is carried " +
        "to the deadline: on track if it reaches the target, at risk if it covers at least 90% " +
        "of the way, else behind."
    }
  };

  var MONTHS = {
    fa: ["فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان", "آذر", "دی",
      "بهمن", "اسفند"],
    en: ["Farvardin", "Ordibehesht", "Khordad", "Tir", "Mordad", "Shahrivar", "Mehr", "Aban",
      "Azar", "Dey", "Bahman", "Esfand"]
  };

  // What a unit is called on an axis, and the word after a value ("" for none).
  var UNITS = {
    percent: { fa: ["درصد", ""], en: ["percent", ""] },
    count: { fa: ["تعداد", ""], en: ["count", ""] },
    people: { fa: ["نفر", "نفر"], en: ["people", "people"] },
    transactions: { fa: ["تراکنش", "تراکنش"], en: ["transactions", "transactions"] }
  };

  var SCALES = [
    [1e9, { fa: "میلیارد", en: "billion" }],
    [1e6, { fa: "میلیون", en: "million" }]
  ];

  var PERSIAN = "۰۱۲۳۴۵۶۷۸۹";

  function fill(template, values) {
    return template.replace(/\{([a-z_]+)\}/g, function (all, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? String(values[key]) : all;
    });
  }

  // Persian digits and separators in Persian; the text unchanged in English.
  function localDigits(text, lang) {
    if (lang !== "fa") return String(text);
    return String(text).replace(/[0-9]/g, function (d) { return PERSIAN[+d]; })
      .replace(/,/g, "٬").replace(/\./g, "٫").replace(/%/g, "٪").replace(/-/g, "−");
  }

  // Thousands grouped, at most `decimals` decimals, trailing zeros dropped.
  function grouped(value, decimals) {
    var fixed = Number(value).toFixed(decimals);
    if (decimals > 0) fixed = fixed.replace(/\.?0+$/, "");
    if (/^-0$/.test(fixed)) fixed = "0";
    var parts = fixed.split(".");
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return parts.join(".");
  }

  // Enough decimals to read a value at its size: 1.25, 12.5, 125.
  function decimalsFor(value) {
    var size = Math.abs(value);
    if (size < 10) return 2;
    if (size < 100) return 1;
    return 0;
  }

  // A number as read: large ones in millions or billions ("1.5 billion", "۴۸ میلیون").
  function formatNumber(value, lang) {
    if (value === null || value === undefined || !isFinite(value)) return "—";
    for (var i = 0; i < SCALES.length; i += 1) {
      var scale = SCALES[i];
      if (Math.abs(value) >= scale[0]) {
        var scaled = value / scale[0];
        return localDigits(grouped(scaled, decimalsFor(scaled)), lang) + " " + scale[1][lang];
      }
    }
    var decimals = Math.abs(value) < 10 ? 2 : Math.abs(value) < 1000 ? 1 : 0;
    return localDigits(grouped(value, decimals), lang);
  }

  // A value with its unit: "27.9%", "48 million people", "۸ میلیارد تراکنش".
  function formatValue(value, unit, lang) {
    if (value === null || value === undefined || !isFinite(value)) return "—";
    if (unit === "percent") return localDigits(grouped(value, 1) + "%", lang);
    var words = UNITS[unit];
    var after = words ? words[lang][1] : unit;
    var number = formatNumber(value, lang);
    return after ? number + " " + after : number;
  }

  // A share (1 = all of it) as a percentage.
  function formatShare(share, lang) {
    if (share === null || share === undefined || !isFinite(share)) return "—";
    return localDigits(grouped(share * 100, 0) + "%", lang);
  }

  // A value on an axis: no unit word (the axis is titled with it).
  function formatTick(value, unit, lang) {
    if (unit === "percent") return localDigits(grouped(value, 2) + "%", lang);
    return formatNumber(value, lang);
  }

  function unitTitle(unit, lang) {
    var words = UNITS[unit];
    return words ? words[lang][0] : String(unit);
  }

  // --- The Jalali calendar (the 33-year-cycle arithmetic of jalaali-js, MIT) ---------
  var BREAKS = [-61, 9, 38, 199, 426, 686, 756, 818, 1111, 1181, 1210, 1635, 2060, 2097,
    2192, 2262, 2324, 2394, 2456, 3178];

  function div(a, b) { return ~~(a / b); }
  function mod(a, b) { return a - ~~(a / b) * b; }

  // The Gregorian year a Jalali year starts in, and the March day of its Nowruz.
  function jalaliYearStart(jy) {
    var gy = jy + 621, leapJ = -14, jp = BREAKS[0], jump = 0, jm, n, i;
    for (i = 1; i < BREAKS.length; i += 1) {
      jm = BREAKS[i];
      jump = jm - jp;
      if (jy < jm) break;
      leapJ = leapJ + div(jump, 33) * 8 + div(mod(jump, 33), 4);
      jp = jm;
    }
    n = jy - jp;
    leapJ = leapJ + div(n, 33) * 8 + div(mod(n, 33) + 3, 4);
    if (mod(jump, 33) === 4 && jump - n === 4) leapJ += 1;
    var leapG = div(gy, 4) - div((div(gy, 100) + 1) * 3, 4) - 150;
    return { gy: gy, march: 20 + leapJ - leapG };
  }

  // The Julian day number of a Gregorian day.
  function gregorianDayNumber(gy, gm, gd) {
    var d = div((gy + div(gm - 8, 6) + 100100) * 1461, 4) +
      div(153 * mod(gm + 9, 12) + 2, 5) + gd - 34840408;
    return d - div(div(gy + 100100 + div(gm - 8, 6), 100) * 3, 4) + 752;
  }

  function parseJalali(text) {
    var match = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/.exec(String(text));
    if (!match) return null;
    var parts = { year: +match[1], month: +match[2], day: +match[3] };
    if (parts.month < 1 || parts.month > 12 || parts.day < 1 || parts.day > 31) return null;
    return parts;
  }

  // A Jalali day ("1403-04-03", or year, month, day) as a day number: consecutive days
  // have consecutive numbers (the Julian day number), so days can be placed on an axis.
  function jalaliDayNumber(year, month, day) {
    if (typeof year === "string") {
      var parts = parseJalali(year);
      if (!parts) return null;
      year = parts.year; month = parts.month; day = parts.day;
    }
    var start = jalaliYearStart(year);
    return gregorianDayNumber(start.gy, 3, start.march) + (month - 1) * 31 -
      div(month, 7) * (month - 7) + day - 1;
  }

  // "1403-04-03" as read: "۳ تیر ۱۴۰۳", "3 Tir 1403".
  function formatJalaliDay(text, lang) {
    var parts = parseJalali(text);
    if (!parts) return localDigits(text === null || text === undefined ? "—" : text, lang);
    return localDigits(String(parts.day), lang) + " " + MONTHS[lang][parts.month - 1] + " " +
      localDigits(String(parts.year), lang);
  }

  // --- Scales ---------------------------------------------------------------------------
  function niceStep(raw) {
    var magnitude = Math.pow(10, Math.floor(Math.log10(raw)));
    var fraction = raw / magnitude;
    var nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10;
    return nice * magnitude;
  }

  function tidy(value) { return parseFloat(value.toPrecision(12)); }

  // Round bounds and evenly spaced ticks covering [low, high], about `count` intervals.
  // A range of non-negative values that starts low enough starts at zero.
  function niceScale(low, high, count) {
    if (low > high) { var swap = low; low = high; high = swap; }
    if (low >= 0 && low <= high / 2) low = 0;
    if (high === low) {
      var pad = Math.abs(high) / 10 || 1;
      low -= pad; high += pad;
      if (low < 0 && high - pad >= 0) low = 0;
    }
    var step = niceStep((high - low) / Math.max(count || 4, 1));
    var min = tidy(Math.floor(low / step + 1e-9) * step);
    var max = tidy(Math.ceil(high / step - 1e-9) * step);
    var ticks = [];
    for (var i = 0; i <= Math.round((max - min) / step); i += 1) ticks.push(tidy(min + i * step));
    return { min: min, max: max, step: step, ticks: ticks };
  }

  // Ticks on a time axis from `first` to `last` (Jalali days): the first days of months,
  // every 1, 2, 3 or 6 months, or of years, every 1, 2, 5 or 10, at most `most` of them.
  function timeTicks(first, last, lang, most) {
    var start = parseJalali(first), from = jalaliDayNumber(first), to = jalaliDayNumber(last);
    if (!start || from === null || to === null) return [];
    var span = (to - from) / 30.44;
    var steps = [1, 2, 3, 6, 12, 24, 60, 120], step = steps[steps.length - 1];
    for (var s = 0; s < steps.length; s += 1) {
      if (span / steps[s] <= (most || 5)) { step = steps[s]; break; }
    }
    var ticks = [], month = (start.year * 12) + (start.month - 1);
    month = Math.ceil(month / step) * step;
    for (; ; month += step) {
      var year = Math.floor(month / 12), monthOfYear = month % 12 + 1;
      var day = jalaliDayNumber(year, monthOfYear, 1);
      if (day > to) break;
      if (day < from) continue;
      var label = step >= 12 ? localDigits(String(year), lang)
        : MONTHS[lang][monthOfYear - 1] + " " + localDigits(String(year), lang);
      ticks.push({ day: day, label: label });
    }
    if (!ticks.length) {
      ticks.push({ day: from, label: formatJalaliDay(first, lang) });
      if (to !== from) ticks.push({ day: to, label: formatJalaliDay(last, lang) });
    }
    return ticks;
  }

  // Everything a target's chart draws, in the chart's coordinates (no DOM): the actual
  // series, the target path (baseline to target at the deadline), the projection (the
  // last actual point to the projected value at the deadline) and both axes' ticks.
  function chartModel(target, lang, size) {
    var box = size || { width: 560, height: 220, left: 78, right: 44, top: 26, bottom: 30 };
    var series = (target.series || []).map(function (p) {
      return { day: jalaliDayNumber(p.day), label: p.day, value: p.value };
    }).filter(function (p) { return p.day !== null && isFinite(p.value); });
    var baselineDay = jalaliDayNumber(target.baseline_date);
    var deadline = jalaliDayNumber(target.deadline);
    var last = series.length ? series[series.length - 1] : null;
    var projecting = last !== null && target.projected_value !== null &&
      target.projected_value !== undefined && isFinite(target.projected_value) &&
      deadline !== null && last.day < deadline && series.length > 1;

    var days = series.map(function (p) { return p.day; });
    [baselineDay, deadline].forEach(function (d) { if (d !== null) days.push(d); });
    var values = series.map(function (p) { return p.value; });
    values.push(target.baseline_value, target.target_value);
    if (projecting) values.push(target.projected_value);
    values = values.filter(function (v) { return v !== null && v !== undefined && isFinite(v); });

    var firstDay = Math.min.apply(null, days), lastDay = Math.max.apply(null, days);
    var width = box.width - box.left - box.right, height = box.height - box.top - box.bottom;
    var dayRange = lastDay > firstDay ? lastDay - firstDay : 1;
    var scale = niceScale(Math.min.apply(null, values), Math.max.apply(null, values), 4);
    function x(day) { return tidy(box.left + (day - firstDay) / dayRange * width); }
    function y(value) {
      return tidy(box.top + (scale.max - value) / (scale.max - scale.min) * height);
    }
    var firstLabel = series.length && series[0].day === firstDay ? series[0].label
      : target.baseline_date;
    var lastLabel = deadline === lastDay || last === null ? target.deadline : last.label;

    return {
      box: box,
      actual: series.map(function (p) {
        return { x: x(p.day), y: y(p.value), day: p.label, value: p.value };
      }),
      target: baselineDay !== null && deadline !== null ? {
        x1: x(baselineDay), y1: y(target.baseline_value),
        x2: x(deadline), y2: y(target.target_value)
      } : null,
      projection: projecting ? {
        x1: x(last.day), y1: y(last.value), x2: x(deadline), y2: y(target.projected_value)
      } : null,
      deadline: deadline !== null ? x(deadline) : null,
      xTicks: timeTicks(firstLabel, lastLabel, lang, 5).map(function (t) {
        return { x: x(t.day), label: t.label };
      }),
      yTicks: scale.ticks.map(function (v) {
        return { y: y(v), value: v, label: formatTick(v, target.unit, lang) };
      }),
      unit: unitTitle(target.unit, lang)
    };
  }

  function byStatus(targets) {
    var groups = {};
    STATUS_ORDER.forEach(function (status) { groups[status] = []; });
    targets.forEach(function (target) {
      (groups[target.status] || groups.no_data).push(target);
    });
    STATUS_ORDER.forEach(function (status) {
      groups[status].sort(function (a, b) {
        return a.deadline < b.deadline ? -1 : a.deadline > b.deadline ? 1
          : a.target_id < b.target_id ? -1 : a.target_id > b.target_id ? 1 : 0;
      });
    });
    return STATUS_ORDER.map(function (status) { return { status: status, targets: groups[status] }; });
  }

  // The plan or law a basis names: its text before the first colon, if that is short.
  function basisTitle(basis) {
    var text = String(basis || "");
    var colon = text.indexOf(":");
    return colon > 0 && colon <= 60 ? text.slice(0, colon) : "";
  }

  var HELPERS = {
    STATUS_ORDER: STATUS_ORDER,
    TEXT: TEXT,
    localDigits: localDigits,
    formatNumber: formatNumber,
    formatValue: formatValue,
    formatShare: formatShare,
    formatTick: formatTick,
    formatJalaliDay: formatJalaliDay,
    jalaliDayNumber: jalaliDayNumber,
    niceScale: niceScale,
    timeTicks: timeTicks,
    chartModel: chartModel,
    byStatus: byStatus,
    basisTitle: basisTitle
  };

  // --- The page -------------------------------------------------------------------------
  function startPage() {
    var LANG = document.documentElement.lang === "en" ? "en" : "fa";
    var T = TEXT[LANG];
    var SVG = "http://www.w3.org/2000/svg";
    var places = JSON.parse(document.getElementById("places").textContent);
    var shown = null;

    function el(tag, attrs, text) {
      var node = document.createElement(tag);
      Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
      if (text !== undefined) node.textContent = text;
      return node;
    }

    // The charts are laid out left to right; Persian labels in them are isolated
    // right-to-left runs, so "۱۵ میلیارد" reads in its order.
    function svgEl(tag, attrs, text) {
      var node = document.createElementNS(SVG, tag);
      Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
      if (text !== undefined) node.textContent = LANG === "fa" ? "\u2067" + text + "\u2069" : text;
      return node;
    }

    function name(target) {
      return LANG === "fa" ? target.indicator_name_fa : target.indicator_name_en;
    }

    function scopeOf(target) {
      if (target.scope === "province") {
        var province = (places.provinces || {})[target.scope_code];
        return fill(T.province, { name: province ? province[LANG] : target.scope_code });
      }
      if (target.scope === "agency") return fill(T.agency, { name: target.scope_code });
      return T.nationwide;
    }

    function value(target, v) { return formatValue(v, target.unit, LANG); }
    function day(text) { return formatJalaliDay(text, LANG); }

    function badge(status) {
      return el("span", { "class": "badge status-" + status }, T.status[status] || status);
    }

    function cardId(target) { return "target-" + target.target_id; }

    function countText(n) {
      return n === 1 && T.targets_count_one ? T.targets_count_one
        : fill(T.targets_count, { n: localDigits(String(n), LANG) });
    }

    function renderSummary(groups, total) {
      var box = document.getElementById("summary");
      box.textContent = "";
      box.appendChild(el("h2", { id: "summary-title" }, T.summary_title));
      box.appendChild(el("p", { "class": "total" },
        fill(T.summary_total, { n: localDigits(String(total), LANG) })));
      var list = el("ul", { "class": "summary-list" });
      groups.forEach(function (group) {
        var item = el("li", { "class": "summary-" + group.status, "data-status": group.status });
        item.appendChild(badge(group.status));
        item.appendChild(el("span", { "class": "count" },
          countText(group.targets.length)));
        if (group.targets.length) {
          var names = el("span", { "class": "names" });
          group.targets.forEach(function (target, i) {
            if (i) names.appendChild(document.createTextNode(LANG === "fa" ? "، " : ", "));
            var plan = basisTitle(LANG === "fa" ? target.basis_fa : target.basis_en);
            var where = target.scope === "national" ? "" : " (" + scopeOf(target) + ")";
            var text = name(target) + where + " — " + (plan ? plan + (LANG === "fa" ? "، " : ", ") : "") +
              day(target.deadline);
            names.appendChild(el("a", { href: "#" + cardId(target) }, text));
          });
          item.appendChild(names);
        }
        list.appendChild(item);
      });
      box.appendChild(list);
    }

    function progressBar(target) {
      var known = target.progress !== null && target.progress !== undefined;
      var filled = known ? Math.max(0, Math.min(1, target.progress)) : 0;
      var expected = Math.max(0, Math.min(1, target.expected_progress || 0));
      var text = known
        ? fill(T.progress, { progress: formatShare(target.progress, LANG),
          expected: formatShare(target.expected_progress, LANG) })
        : fill(T.progress_none, { expected: formatShare(target.expected_progress, LANG) });
      var wrap = el("div", { "class": "progress" });
      var bar = el("div", {
        "class": "bar", role: "progressbar", "aria-label": T.progress_label,
        "aria-valuemin": "0", "aria-valuemax": "100",
        "aria-valuenow": String(Math.round(filled * 100)), "aria-valuetext": text
      });
      var fillBar = el("div", { "class": "fill status-" + target.status });
      fillBar.style.width = (filled * 100).toFixed(1) + "%";
      bar.appendChild(fillBar);
      var mark = el("div", { "class": "expected", "aria-hidden": "true" });
      mark.style.insetInlineStart = (expected * 100).toFixed(1) + "%";
      bar.appendChild(mark);
      wrap.appendChild(bar);
      wrap.appendChild(el("p", { "class": "progress-text", "aria-hidden": "true" }, text));
      return wrap;
    }

    function chart(target) {
      var model = chartModel(target, LANG);
      var box = model.box;
      var titleId = cardId(target) + "-chart-title", descId = cardId(target) + "-chart-desc";
      var svg = svgEl("svg", {
        viewBox: "0 0 " + box.width + " " + box.height, role: "img",
        "aria-labelledby": titleId + " " + descId
      });
      svg.appendChild(svgEl("title", { id: titleId }, fill(T.chart_title, { name: name(target) })));
      var desc = [];
      if (model.actual.length) {
        var a = model.actual[0], b = model.actual[model.actual.length - 1];
        desc.push(fill(T.chart_desc_actual, { first: value(target, a.value), first_day: day(a.day),
          last: value(target, b.value), last_day: day(b.day) }));
      }
      desc.push(fill(T.chart_desc_target, { target: value(target, target.target_value),
        deadline: day(target.deadline) }));
      if (model.projection) {
        desc.push(fill(T.chart_desc_projection, { value: value(target, target.projected_value) }));
      }
      svg.appendChild(svgEl("desc", { id: descId }, desc.join(" ")));

      var right = box.width - box.right, bottom = box.height - box.bottom;
      model.yTicks.forEach(function (t) {
        svg.appendChild(svgEl("line", { x1: box.left, y1: t.y, x2: right, y2: t.y, "class": "grid" }));
        svg.appendChild(svgEl("text", { x: box.left - 6, y: t.y + 4, "text-anchor": "end",
          "class": "tick" }, t.label));
      });
      svg.appendChild(svgEl("text", { x: 4, y: 12, "class": "axis-title" }, model.unit));
      svg.appendChild(svgEl("line", { x1: box.left, y1: bottom, x2: right, y2: bottom, "class": "axis" }));
      model.xTicks.forEach(function (t) {
        svg.appendChild(svgEl("line", { x1: t.x, y1: bottom, x2: t.x, y2: bottom + 4, "class": "axis" }));
        svg.appendChild(svgEl("text", { x: t.x, y: bottom + 18, "text-anchor": "middle", "class": "tick" },
          t.label));
      });
      if (model.deadline !== null) {
        svg.appendChild(svgEl("line", { x1: model.deadline, y1: box.top - 8, x2: model.deadline,
          y2: bottom, "class": "deadline" }));
        svg.appendChild(svgEl("text", { x: model.deadline - 3, y: box.top - 12, "text-anchor": "end",
          "class": "tick" }, T.deadline + " " + day(target.deadline)));
      }
      if (model.target) {
        var t = model.target;
        svg.appendChild(svgEl("line", { x1: t.x1, y1: t.y1, x2: t.x2, y2: t.y2, "class": "target-path" }));
        var ring = svgEl("circle", { cx: t.x2, cy: t.y2, r: 4.5, "class": "target-point" });
        ring.appendChild(svgEl("title", {}, T.target_path + ": " + value(target, target.target_value) +
          " — " + day(target.deadline)));
        svg.appendChild(ring);
      }
      if (model.projection) {
        var p = model.projection;
        svg.appendChild(svgEl("line", { x1: p.x1, y1: p.y1, x2: p.x2, y2: p.y2, "class": "projection" }));
        var end = svgEl("circle", { cx: p.x2, cy: p.y2, r: 3, "class": "projection-point" });
        end.appendChild(svgEl("title", {}, T.projection + ": " + value(target, target.projected_value) +
          " — " + day(target.deadline)));
        svg.appendChild(end);
      }
      if (model.actual.length > 1) {
        svg.appendChild(svgEl("polyline", { points: model.actual.map(function (q) {
          return q.x + "," + q.y;
        }).join(" "), "class": "actual" }));
      }
      model.actual.forEach(function (q) {
        var dot = svgEl("circle", { cx: q.x, cy: q.y, r: 3.5, "class": "actual-point" });
        dot.appendChild(svgEl("title", {}, day(q.day) + ": " + value(target, q.value)));
        svg.appendChild(dot);
      });

      var figure = el("figure", { "class": "target-chart" });
      figure.appendChild(svg);
      var legend = el("ul", { "class": "legend", "aria-hidden": "true" });
      [["actual", T.actual], ["target-path", T.target_path], ["projection", T.projection]]
        .forEach(function (entry) {
          var item = el("li");
          var swatch = svgEl("svg", { viewBox: "0 0 24 10", width: "24", height: "10" });
          swatch.appendChild(svgEl("line", { x1: 1, y1: 5, x2: 23, y2: 5, "class": entry[0] }));
          item.appendChild(swatch);
          item.appendChild(document.createTextNode(" " + entry[1]));
          legend.appendChild(item);
        });
      figure.appendChild(legend);
      return figure;
    }

    function card(target) {
      var article = el("article", { "class": "target status-" + target.status, id: cardId(target),
        "data-target": target.target_id });
      var head = el("header");
      head.appendChild(el("h3", {}, name(target)));
      head.appendChild(badge(target.status));
      article.appendChild(head);
      article.appendChild(el("p", { "class": "scope" }, scopeOf(target)));
      var facts = el("ul", { "class": "facts" });
      facts.appendChild(el("li", { "class": "way" }, fill(T.baseline_to_target, {
        baseline: value(target, target.baseline_value), baseline_date: day(target.baseline_date),
        target: value(target, target.target_value), deadline: day(target.deadline)
      })));
      facts.appendChild(el("li", { "class": "current" }, target.current_value === null ||
        target.current_value === undefined ? T.no_current
        : fill(T.current, { value: value(target, target.current_value), day: day(target.current_as_of) })));
      if (target.projected_value !== null && target.projected_value !== undefined) {
        facts.appendChild(el("li", {}, fill(T.projected, { value: value(target, target.projected_value) })));
      }
      if (target.trend_per_year !== null && target.trend_per_year !== undefined) {
        var size = Math.abs(target.trend_per_year);
        var amount = target.unit === "percent"
          ? fill(T.points_per_year, { value: localDigits(String(+size.toFixed(1)), LANG) })
          : value(target, size);
        facts.appendChild(el("li", {}, fill(target.trend_per_year < 0 ? T.trend_down : T.trend_up,
          { value: amount })));
      }
      article.appendChild(facts);
      article.appendChild(progressBar(target));
      article.appendChild(chart(target));
      var basis = el("p", { "class": "basis" });
      basis.appendChild(el("strong", {}, T.basis));
      basis.appendChild(document.createTextNode(" " + (LANG === "fa" ? target.basis_fa : target.basis_en)));
      article.appendChild(basis);
      var source = el("p", { "class": "citation" });
      source.appendChild(el("strong", {}, T.citation));
      source.appendChild(document.createTextNode(" "));
      source.appendChild(el("cite", { dir: "auto" }, target.citation));
      article.appendChild(source);
      article.appendChild(el("p", { "class": "evaluated" }, fill(T.evaluated, { day: day(target.evaluated_on) })));
      return article;
    }

    function render(data) {
      // A target the register has withdrawn (`active: false`) is no longer monitored.
      var targets = (data.targets || []).filter(function (t) { return t.active !== false; });
      var groups = byStatus(targets);
      renderSummary(groups, targets.length);
      var box = document.getElementById("groups");
      box.textContent = "";
      if (!targets.length) box.appendChild(el("p", { "class": "empty" }, T.none));
      groups.forEach(function (group) {
        if (!group.targets.length) return;
        var section = el("section", { "class": "group", id: "group-" + group.status,
          "aria-labelledby": "group-" + group.status + "-title" });
        var title = el("h2", { id: "group-" + group.status + "-title" });
        title.appendChild(badge(group.status));
        title.appendChild(document.createTextNode(" " +
          countText(group.targets.length)));
        section.appendChild(title);
        var cards = el("div", { "class": "targets" });
        group.targets.forEach(function (target) { cards.appendChild(card(target)); });
        section.appendChild(cards);
        box.appendChild(section);
      });
      var evaluated = targets.map(function (t) { return t.evaluated_on; }).sort().pop();
      document.getElementById("updated").textContent = evaluated
        ? T.updated + " " + day(evaluated) : "";
      document.getElementById("note").textContent = T.note;
      document.body.setAttribute("data-rendered", String(targets.length));
    }

    function show(text) {
      if (text === shown) return;
      shown = text;
      render(JSON.parse(text));
    }

    var live = document.getElementById("live");
    function poll() {
      if (!window.fetch) return;
      window.fetch("/api/programme/targets", { headers: { accept: "application/json" }, cache: "no-store" })
        .then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.text();
        })
        .then(function (text) {
          live.className = "live on"; live.title = T.live;
          show(text);
        })
        .catch(function () { live.className = "live"; live.title = T.offline; });
    }

    show(document.getElementById("initial").textContent);
    window.setInterval(poll, POLL_MILLISECONDS);
  }

  if (typeof module === "object" && module.exports) module.exports = HELPERS;
  if (typeof document !== "undefined") startPage();
})();
