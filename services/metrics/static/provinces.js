// The provinces' weekly reports: renders the week's overview embedded in the page (the
// summary, the table of the 31 provinces with each figure and its change, the reasons
// given for falls), polls /api/provinces/reports/{week} every 30 seconds, and draws the
// chosen province's figures week by week from /api/provinces/{province}/reports. No
// dependencies, no network beyond this service. Every text from the data goes into the
// DOM through textContent or setAttribute, never as markup.
//
// The helpers above `startPage` are pure (no DOM): under node, `require` returns them so
// the tests can check numbers, changes, Jalali weeks and the charts' scales.
(function () {
  "use strict";

  var POLL_MILLISECONDS = 30000;

  var TEXT = {
    fa: {
      status: {
        reported: "گزارش داده",
        late: "گزارش با تأخیر",
        missing: "گزارش نداده",
        awaited: "هنوز نرسیده"
      },
      week: "هفته {n} سال {year}",
      week_short: "هفته {n}",
      week_range: "{start} تا {end}",
      ended: "این هفته به پایان رسیده است.",
      in_progress: "این هفته هنوز تمام نشده است؛ استانی که تا پایان آن گزارش ندهد «گزارش نداده» شمرده می‌شود.",
      summary_title: "خلاصه هفته",
      reported_count: "{n} استان از {total} گزارش داده‌اند",
      provinces_count: "{n} استان",
      table_title: "گزارش هر استان در این هفته",
      table_caption: "شاخص‌های هر استان در این هفته و تغییر هر یک نسبت به گزارش هفته پیش همان استان (یا آخرین گزارش پیشین آن، اگر هفته پیش گزارش نداده و در ستون وضعیت آمده است). ▲ افزایش، ▼ کاهش، = بی‌تغییر.",
      province: "استان",
      status_column: "وضعیت",
      percent_suffix: " (٪)",
      compared_with: "مقایسه با {week}؛ هفته پیش گزارش نداد",
      no_previous: "گزارش پیشینی نیست",
      revision: "اصلاح‌شده (ویرایش {n})",
      up: "افزایش نسبت به {week}",
      down: "کاهش نسبت به {week}",
      flat: "بی‌تغییر نسبت به {week}",
      not_reported: "گزارش نشده",
      reasons_title: "علت کاهش‌ها",
      reasons_none: "در این هفته هیچ کاهشی گزارش نشده است.",
      history_title: "روند هفتگی استان",
      history_of: "روند هفتگی استان {name}",
      history_choose: "یک استان را برگزینید تا شاخص‌هایش هفته به هفته نمایش داده شود.",
      history_loading: "در حال دریافت…",
      history_failed: "گزارش‌های این استان دریافت نشد.",
      history_none: "این استان هنوز گزارشی نداده است.",
      history_no_figure: "این شاخص گزارش نشده است.",
      chart_title: "{name} در استان {province}، هفته به هفته",
      chart_desc: "{count} گزارش، از {first} در {first_week} تا {last} در {last_week}.",
      chart_gap: "خط‌چین: هفته‌هایی که استان گزارش نداده است.",
      table_of_weeks: "ارقام هفته به هفته",
      week_column: "هفته",
      value_column: "مقدار",
      this_week: "هفته نمایش‌داده‌شده",
      updated: "به‌روزرسانی:",
      live: "متصل",
      offline: "قطع",
      note: "هر استان هفته‌ای یک گزارش می‌دهد (شنبه تا جمعه). گزارشی که پس از پایان هفته برسد پذیرفته و «با تأخیر» نشان داده می‌شود؛ " +
        "استانی که تا پایان هفته گزارش ندهد «گزارش نداده» است. تغییر هر رقم نسبت به گزارش پیشین همان استان است؛ " +
        "کاهش هر رقم نیازمند ذکر علت است.",
      list_separator: "، "
    },
    en: {
      status: {
        reported: "Reported",
        late: "Reported late",
        missing: "Missing",
        awaited: "Not yet in"
      },
      week: "Week {n} of {year}",
      week_short: "W{n}",
      week_range: "{start} to {end}",
      ended: "This week has ended.",
      in_progress: "This week has not ended yet; a province without a report when it ends is missing.",
      summary_title: "The week at a glance",
      reported_count: "{n} of {total} provinces reported",
      provinces_count: "{n} provinces",
      provinces_count_one: "1 province",
      table_title: "Each province's report this week",
      table_caption: "Each province's figures this week, each with its change since the province's report of the week before (or its latest earlier report, named in the status column, when it did not report that week). ▲ up, ▼ down, = unchanged.",
      province: "Province",
      status_column: "Status",
      percent_suffix: " (%)",
      compared_with: "compared with {week}; no report the week before",
      no_previous: "no earlier report",
      revision: "corrected (revision {n})",
      up: "up since {week}",
      down: "down since {week}",
      flat: "unchanged since {week}",
      not_reported: "not reported",
      reasons_title: "Reasons given for falls",
      reasons_none: "No figure fell this week.",
      history_title: "A province's weeks",
      history_of: "{name}: week by week",
      history_choose: "Choose a province to see its figures week by week.",
      history_loading: "Loading…",
      history_failed: "The province's reports could not be fetched.",
      history_none: "This province has not reported yet.",
      history_no_figure: "This figure has not been reported.",
      chart_title: "{name} in {province}, week by week",
      chart_desc: "{count} reports, from {first} in {first_week} to {last} in {last_week}.",
      chart_gap: "Dashed: weeks the province did not report.",
      table_of_weeks: "The figures week by week",
      week_column: "Week",
      value_column: "Value",
      this_week: "the week shown",
      updated: "Updated:",
      live: "connected",
      offline: "offline",
      note: "Each province reports once a week (Saturday to Friday). A report arriving after its week has ended " +
        "is accepted and shown as late; a province with no report when its week ends is missing. A figure's " +
        "change is since the province's previous report; a figure that falls needs a reason.",
      list_separator: ", "
    }
  };

  var MONTHS = {
    fa: ["فروردین", "اردیبهشت", "خرداد", "تیر", "مرداد", "شهریور", "مهر", "آبان", "آذر", "دی",
      "بهمن", "اسفند"],
    en: ["Farvardin", "Ordibehesht", "Khordad", "Tir", "Mordad", "Shahrivar", "Mehr", "Aban",
      "Azar", "Dey", "Bahman", "Esfand"]
  };

  var ARROWS = { up: "▲", down: "▼", flat: "=" };
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

  function known(value) {
    return value !== null && value !== undefined && isFinite(value);
  }

  // A figure as read: a share with one decimal and "%", a count grouped.
  function formatValue(value, unit, lang) {
    if (!known(value)) return "—";
    if (unit === "percent") return localDigits(grouped(value, 1) + "%", lang);
    return localDigits(grouped(value, 0), lang);
  }

  // A change since the previous report: its direction, arrow and signed text
  // ("▲ +0.5", "▼ −1,200", "= 0"), or direction "none" when there is nothing to compare.
  function formatChange(change, unit, lang) {
    if (!known(change)) return { direction: "none", arrow: "", text: "—" };
    var decimals = unit === "percent" ? 1 : 0;
    var size = grouped(Math.abs(change), decimals);
    if (size === "0") return { direction: "flat", arrow: ARROWS.flat, text: localDigits("0", lang) };
    var direction = change > 0 ? "up" : "down";
    return {
      direction: direction,
      arrow: ARROWS[direction],
      text: (change > 0 ? "+" : "−") + localDigits(size, lang)
    };
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

  // A Jalali day as its Julian day number: consecutive days, consecutive numbers.
  function jalaliDayNumber(year, month, day) {
    var start = jalaliYearStart(year);
    return gregorianDayNumber(start.gy, 3, start.march) + (month - 1) * 31 -
      div(month, 7) * (month - 7) + day - 1;
  }

  function parseJalali(text) {
    var match = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/.exec(String(text));
    if (!match) return null;
    var parts = { year: +match[1], month: +match[2], day: +match[3] };
    if (parts.month < 1 || parts.month > 12 || parts.day < 1 || parts.day > 31) return null;
    return parts;
  }

  // "1405-08-22" as read: "۲۲ آبان ۱۴۰۵", "22 Aban 1405".
  function formatJalaliDay(text, lang) {
    var parts = parseJalali(text);
    if (!parts) return localDigits(text === null || text === undefined ? "—" : text, lang);
    return localDigits(String(parts.day), lang) + " " + MONTHS[lang][parts.month - 1] + " " +
      localDigits(String(parts.year), lang);
  }

  // A week's first and last days as read: "۲۲ آبان تا ۲۸ آبان ۱۴۰۵".
  function formatWeekRange(startsOn, endsOn, lang) {
    var a = parseJalali(startsOn), b = parseJalali(endsOn);
    if (!a || !b) return "";
    var start = a.year === b.year
      ? localDigits(String(a.day), lang) + " " + MONTHS[lang][a.month - 1]
      : formatJalaliDay(startsOn, lang);
    return fill(TEXT[lang].week_range, { start: start, end: formatJalaliDay(endsOn, lang) });
  }

  function parseWeek(label) {
    var match = /^([0-9]{4})-W([0-9]{2})$/.exec(String(label));
    if (!match || +match[2] < 1 || +match[2] > 53) return null;
    return { year: +match[1], week: +match[2] };
  }

  // The day number of a week's first day. Weeks start on Saturday and are cut at the
  // year's edges: week 1 holds 1 Farvardin, and starts on it.
  function weekStartDay(label) {
    var parts = parseWeek(label);
    if (!parts) return null;
    var first = jalaliDayNumber(parts.year, 1, 1);
    var weekday = mod(first + 2, 7); // 0 on Saturday
    return Math.max(first, first + (parts.week - 1) * 7 - weekday);
  }

  // "1405-W36" as read: "هفته ۳۶ سال ۱۴۰۵", "Week 36 of 1405".
  function formatWeek(label, lang) {
    var parts = parseWeek(label);
    if (!parts) return localDigits(label === null || label === undefined ? "—" : label, lang);
    return fill(TEXT[lang].week, { n: localDigits(String(parts.week), lang),
      year: localDigits(String(parts.year), lang) });
  }

  // --- The week's overview ---------------------------------------------------------------

  // What the page calls a province's standing: a report that came late is "late".
  function standing(entry) {
    if (entry.status === "reported" && entry.late) return "late";
    return entry.status;
  }

  // The week's summary, with the provinces of each line named (in `lang`).
  function summarize(overview, lang) {
    var byCode = {};
    (overview.provinces || []).forEach(function (p) { byCode[p.province] = p; });
    function names(codes) {
      return (codes || []).map(function (code) {
        var p = byCode[code];
        return { code: code, name: p ? (lang === "fa" ? p.name_fa : p.name_en) : code };
      });
    }
    var summary = overview.summary || {};
    return {
      total: summary.provinces || (overview.provinces || []).length,
      reported: summary.reported || 0,
      late: names(summary.late),
      missing: names(summary.missing),
      awaited: names(summary.awaited),
      ended: !!overview.ended
    };
  }

  // --- A province's weeks ----------------------------------------------------------------

  // A figure's value in each week the province reported it, oldest first.
  function figureSeries(reports, code) {
    return (reports || []).map(function (report) {
      var figures = report.figures || {};
      var value = figures[code];
      // The overview lists {value, previous, change}; the province's reports the value.
      if (value !== null && typeof value === "object") value = value.value;
      return { week: report.week, day: weekStartDay(report.week), value: value };
    }).filter(function (p) { return p.day !== null && known(p.value); })
      .sort(function (a, b) { return a.day - b.day; });
  }

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

  // Everything a figure's chart draws, in the chart's coordinates (no DOM): a point per
  // reported week placed by the week's first day, a segment between consecutive points
  // (`gap` when weeks without a report lie between them), the value axis's ticks, the
  // week ticks (at most `most`, each with its year when it changes) and the week shown.
  function historyModel(points, unit, lang, shownWeek, size, most) {
    var box = size || { width: 480, height: 200, left: 60, right: 18, top: 14, bottom: 40 };
    var width = box.width - box.left - box.right, height = box.height - box.top - box.bottom;
    var days = points.map(function (p) { return p.day; });
    var shownDay = weekStartDay(shownWeek);
    var first = Math.min.apply(null, days), last = Math.max.apply(null, days);
    if (shownDay !== null && points.length) {
      first = Math.min(first, shownDay); last = Math.max(last, shownDay);
    }
    var values = points.map(function (p) { return p.value; });
    var scale = niceScale(Math.min.apply(null, values), Math.max.apply(null, values), 4);
    if (unit === "percent" && scale.max > 100 && Math.max.apply(null, values) <= 100) {
      scale = niceScale(Math.min.apply(null, values), 100, 4);
    }
    function x(day) {
      return last > first ? box.left + (day - first) / (last - first) * width : box.left + width / 2;
    }
    function y(value) {
      return box.top + height - (value - scale.min) / (scale.max - scale.min) * height;
    }
    var placed = points.map(function (p) {
      return { week: p.week, day: p.day, value: p.value, x: x(p.day), y: y(p.value) };
    });
    var segments = [];
    for (var i = 1; i < placed.length; i += 1) {
      var a = placed[i - 1], b = placed[i];
      segments.push({ x1: a.x, y1: a.y, x2: b.x, y2: b.y, gap: b.day - a.day > 7 });
    }
    var yTicks = scale.ticks.map(function (value) {
      return { value: value, y: y(value), label: formatValue(value, unit, lang) };
    });
    var every = Math.max(1, Math.ceil(placed.length / (most || 6)));
    var xTicks = [], lastYear = null;
    placed.forEach(function (p, index) {
      if (index % every !== 0 && index !== placed.length - 1) return;
      if (index === placed.length - 1 && index % every !== 0 && xTicks.length &&
        p.x - xTicks[xTicks.length - 1].x < width / (most || 6)) return;
      var parts = parseWeek(p.week);
      xTicks.push({
        x: p.x,
        label: fill(TEXT[lang].week_short, { n: localDigits(String(parts.week), lang) }),
        year: parts.year !== lastYear ? localDigits(String(parts.year), lang) : ""
      });
      lastYear = parts.year;
    });
    return {
      box: box,
      points: placed,
      segments: segments,
      yTicks: yTicks,
      xTicks: xTicks,
      shown: shownDay !== null && placed.length ? x(shownDay) : null
    };
  }

  var HELPERS = {
    TEXT: TEXT,
    localDigits: localDigits,
    formatValue: formatValue,
    formatChange: formatChange,
    formatJalaliDay: formatJalaliDay,
    formatWeekRange: formatWeekRange,
    formatWeek: formatWeek,
    parseWeek: parseWeek,
    weekStartDay: weekStartDay,
    jalaliDayNumber: jalaliDayNumber,
    standing: standing,
    summarize: summarize,
    figureSeries: figureSeries,
    niceScale: niceScale,
    historyModel: historyModel
  };

  // --- The page -------------------------------------------------------------------------
  function startPage() {
    var LANG = document.documentElement.lang === "en" ? "en" : "fa";
    var T = TEXT[LANG];
    var SVG = "http://www.w3.org/2000/svg";
    var config = JSON.parse(document.getElementById("config").textContent);
    var WEEK = config.week;
    var FIGURES = config.figures || [];
    var NAMES = {};
    (config.provinces || []).forEach(function (p) { NAMES[p.code] = LANG === "fa" ? p.name_fa : p.name_en; });
    var shown = null, chosen = null, asked = 0;

    function el(tag, attrs, text) {
      var node = document.createElement(tag);
      Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
      if (text !== undefined) node.textContent = text;
      return node;
    }

    // The charts are laid out left to right; Persian labels in them are isolated
    // right-to-left runs, so they read in their order.
    function svgEl(tag, attrs, text) {
      var node = document.createElementNS(SVG, tag);
      Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
      if (text !== undefined) node.textContent = LANG === "fa" ? "\u2067" + text + "\u2069" : text;
      return node;
    }

    function figureName(figure) { return LANG === "fa" ? figure.name_fa : figure.name_en; }
    function count(n) {
      return n === 1 && T.provinces_count_one ? T.provinces_count_one
        : fill(T.provinces_count, { n: localDigits(String(n), LANG) });
    }
    function badge(status) {
      return el("span", { "class": "badge status-" + status }, T.status[status] || status);
    }

    // This page's address for a province (none: no province), in this week and language.
    function hrefFor(province, lang, week) {
      var query = "lang=" + encodeURIComponent(lang || LANG) + "&week=" + encodeURIComponent(week || WEEK);
      if (province) query += "&province=" + encodeURIComponent(province);
      return "/dashboard/provinces?" + query;
    }

    // The links to other weeks and languages keep the chosen province.
    function keepProvinceInLinks() {
      [["lang-fa", "fa", WEEK], ["lang-en", "en", WEEK], ["previous-week", LANG, config.previous_week],
        ["next-week", LANG, config.next_week], ["current-week", LANG, config.current_week]]
        .forEach(function (entry) {
          var link = document.getElementById(entry[0]);
          if (link && link.tagName === "A" && entry[2]) {
            link.setAttribute("href", hrefFor(chosen, entry[1], entry[2]));
          }
        });
    }

    function names(list, box) {
      if (!list.length) return;
      var span = el("span", { "class": "names" });
      list.forEach(function (p, i) {
        if (i) span.appendChild(document.createTextNode(T.list_separator));
        span.appendChild(provinceLink(p.code, p.name));
      });
      box.appendChild(span);
    }

    function provinceLink(code, text) {
      var link = el("a", { href: hrefFor(code) + "#history", "data-province": code, "class": "province-link" },
        text);
      link.addEventListener("click", function (event) {
        event.preventDefault();
        choose(code, true);
      });
      return link;
    }

    function renderSummary(overview) {
      var s = summarize(overview, LANG);
      var box = document.getElementById("summary");
      box.textContent = "";
      box.appendChild(el("h2", { id: "summary-title" }, T.summary_title + ": " + formatWeek(overview.week, LANG) +
        " · " + formatWeekRange(overview.starts_on, overview.ends_on, LANG)));
      box.appendChild(el("p", { "class": "week-state" }, s.ended ? T.ended : T.in_progress));
      var list = el("ul", { "class": "summary-list" });
      var reported = el("li", { "class": "summary-reported", "data-status": "reported" });
      reported.appendChild(badge("reported"));
      reported.appendChild(el("span", { "class": "count" },
        fill(T.reported_count, { n: localDigits(String(s.reported), LANG), total: localDigits(String(s.total), LANG) })));
      list.appendChild(reported);
      var lines = [["late", s.late]];
      lines.push(s.ended ? ["missing", s.missing] : ["awaited", s.awaited]);
      lines.forEach(function (line) {
        var item = el("li", { "class": "summary-" + line[0] + (line[1].length ? " flagged" : ""),
          "data-status": line[0] });
        item.appendChild(badge(line[0]));
        item.appendChild(el("span", { "class": "count" }, count(line[1].length)));
        names(line[1], item);
        list.appendChild(item);
      });
      box.appendChild(list);
    }

    function changeCell(figure, entry, cell) {
      var change = formatChange(cell.change, figure.unit, LANG);
      var since = entry.previous_week ? formatWeek(entry.previous_week, LANG) : "";
      var words = change.direction === "none" ? T.no_previous : fill(T[change.direction], { week: since });
      var span = el("span", { "class": "change " + change.direction, title: words });
      if (change.arrow) span.appendChild(el("span", { "aria-hidden": "true" }, change.arrow + " "));
      span.appendChild(el("bdi", {}, change.text));
      span.appendChild(el("span", { "class": "sr-only" }, " (" + words + ")"));
      return span;
    }

    function renderTable(overview) {
      var box = document.getElementById("reports");
      box.textContent = "";
      box.appendChild(el("h2", { id: "reports-title" }, T.table_title));
      var wrap = el("div", { "class": "table-wrap", tabindex: "0", role: "region", "aria-labelledby": "reports-title" });
      var table = el("table", { "class": "reports" });
      table.appendChild(el("caption", {}, T.table_caption));
      var head = el("tr");
      head.appendChild(el("th", { scope: "col" }, T.province));
      head.appendChild(el("th", { scope: "col" }, T.status_column));
      FIGURES.forEach(function (figure) {
        head.appendChild(el("th", { scope: "col", "data-figure": figure.code },
          figureName(figure) + (figure.unit === "percent" ? T.percent_suffix : "")));
      });
      var thead = el("thead");
      thead.appendChild(head);
      table.appendChild(thead);
      var body = el("tbody");
      (overview.provinces || []).forEach(function (entry) {
        var status = standing(entry);
        var row = el("tr", { "class": "row-" + status, "data-province": entry.province, "data-status": status });
        var th = el("th", { scope: "row" });
        th.appendChild(provinceLink(entry.province, LANG === "fa" ? entry.name_fa : entry.name_en));
        row.appendChild(th);
        var statusCell = el("td", { "class": "status-cell" });
        statusCell.appendChild(badge(status));
        if (entry.revision > 1) {
          statusCell.appendChild(el("span", { "class": "sub" }, fill(T.revision, { n: localDigits(String(entry.revision), LANG) })));
        }
        if (entry.status === "reported" && entry.previous_week !== config.previous_week) {
          statusCell.appendChild(el("span", { "class": "sub" }, entry.previous_week
            ? fill(T.compared_with, { week: formatWeek(entry.previous_week, LANG) }) : T.no_previous));
        }
        row.appendChild(statusCell);
        FIGURES.forEach(function (figure) {
          var td = el("td", { "class": "figure", "data-figure": figure.code });
          var cell = (entry.figures || {})[figure.code];
          if (!cell) {
            td.appendChild(el("span", { "class": "value none", title: entry.status === "reported" ? T.not_reported : "" }, "—"));
          } else {
            td.appendChild(el("span", { "class": "value" }, formatValue(cell.value, figure.unit, LANG)));
            td.appendChild(changeCell(figure, entry, cell));
          }
          row.appendChild(td);
        });
        body.appendChild(row);
      });
      table.appendChild(body);
      wrap.appendChild(table);
      box.appendChild(wrap);
    }

    function renderReasons(overview) {
      var box = document.getElementById("reasons");
      box.textContent = "";
      box.appendChild(el("h2", { id: "reasons-title" }, T.reasons_title));
      var byCode = {};
      FIGURES.forEach(function (f) { byCode[f.code] = f; });
      var list = el("ul", { "class": "reasons-list" });
      (overview.provinces || []).forEach(function (entry) {
        Object.keys(entry.reasons || {}).sort().forEach(function (key) {
          var figure = byCode[key];
          var item = el("li", { "data-province": entry.province });
          item.appendChild(el("strong", {}, (LANG === "fa" ? entry.name_fa : entry.name_en) + " — " +
            (figure ? figureName(figure) : key) + ": "));
          item.appendChild(el("q", { dir: "auto" }, String(entry.reasons[key])));
          list.appendChild(item);
        });
      });
      if (list.childNodes.length) box.appendChild(list);
      else box.appendChild(el("p", { "class": "empty" }, T.reasons_none));
    }

    function render(overview) {
      document.getElementById("week-label").textContent = formatWeek(overview.week, LANG);
      renderSummary(overview);
      renderTable(overview);
      renderReasons(overview);
      document.getElementById("note").textContent = T.note;
      document.body.setAttribute("data-rendered", String((overview.provinces || []).length));
    }

    function show(text) {
      if (text === shown) return;
      shown = text;
      render(JSON.parse(text));
    }

    // --- A province's weeks --------------------------------------------------------------
    function chart(figure, points, provinceName) {
      var model = historyModel(points, figure.unit, LANG, WEEK);
      var box = model.box;
      var id = "chart-" + figure.code;
      var svg = svgEl("svg", { viewBox: "0 0 " + box.width + " " + box.height, role: "img",
        "aria-labelledby": id + "-title " + id + "-desc" });
      svg.appendChild(svgEl("title", { id: id + "-title" },
        fill(T.chart_title, { name: figureName(figure), province: provinceName })));
      var a = points[0], b = points[points.length - 1];
      var gaps = model.segments.some(function (s) { return s.gap; });
      svg.appendChild(svgEl("desc", { id: id + "-desc" }, fill(T.chart_desc, {
        count: localDigits(String(points.length), LANG),
        first: formatValue(a.value, figure.unit, LANG), first_week: formatWeek(a.week, LANG),
        last: formatValue(b.value, figure.unit, LANG), last_week: formatWeek(b.week, LANG)
      }) + (gaps ? " " + T.chart_gap : "")));
      var right = box.width - box.right, bottom = box.height - box.bottom;
      model.yTicks.forEach(function (t) {
        svg.appendChild(svgEl("line", { x1: box.left, y1: t.y, x2: right, y2: t.y, "class": "grid" }));
        svg.appendChild(svgEl("text", { x: box.left - 6, y: t.y + 4, "text-anchor": "end", "class": "tick" }, t.label));
      });
      svg.appendChild(svgEl("line", { x1: box.left, y1: bottom, x2: right, y2: bottom, "class": "axis" }));
      model.xTicks.forEach(function (t) {
        svg.appendChild(svgEl("line", { x1: t.x, y1: bottom, x2: t.x, y2: bottom + 4, "class": "axis" }));
        svg.appendChild(svgEl("text", { x: t.x, y: bottom + 16, "text-anchor": "middle", "class": "tick" }, t.label));
        if (t.year) {
          svg.appendChild(svgEl("text", { x: t.x, y: bottom + 30, "text-anchor": "middle", "class": "tick year" }, t.year));
        }
      });
      if (model.shown !== null) {
        var mark = svgEl("line", { x1: model.shown, y1: box.top, x2: model.shown, y2: bottom, "class": "shown-week" });
        mark.appendChild(svgEl("title", {}, T.this_week + ": " + formatWeek(WEEK, LANG)));
        svg.appendChild(mark);
      }
      model.segments.forEach(function (s) {
        svg.appendChild(svgEl("line", { x1: s.x1, y1: s.y1, x2: s.x2, y2: s.y2, "class": s.gap ? "line gap" : "line" }));
      });
      model.points.forEach(function (p) {
        var dot = svgEl("circle", { cx: p.x, cy: p.y, r: p.week === WEEK ? 5 : 3.5,
          "class": p.week === WEEK ? "point shown" : "point" });
        dot.appendChild(svgEl("title", {}, formatWeek(p.week, LANG) + ": " + formatValue(p.value, figure.unit, LANG)));
        svg.appendChild(dot);
      });
      return svg;
    }

    function weeksTable(figure, points) {
      var details = el("details");
      details.appendChild(el("summary", {}, T.table_of_weeks));
      var table = el("table", { "class": "weeks-table" });
      var head = el("tr");
      head.appendChild(el("th", { scope: "col" }, T.week_column));
      head.appendChild(el("th", { scope: "col" }, T.value_column));
      var thead = el("thead");
      thead.appendChild(head);
      table.appendChild(thead);
      var body = el("tbody");
      points.slice().reverse().forEach(function (p) {
        var row = el("tr", p.week === WEEK ? { "class": "shown" } : {});
        row.appendChild(el("th", { scope: "row" }, formatWeek(p.week, LANG)));
        row.appendChild(el("td", { "class": "num" }, formatValue(p.value, figure.unit, LANG)));
        body.appendChild(row);
      });
      table.appendChild(body);
      details.appendChild(table);
      return details;
    }

    function renderHistory(code, answer) {
      var box = document.getElementById("history-body");
      box.textContent = "";
      var reports = (answer && answer.reports) || [];
      var provinceName = NAMES[code] || code;
      if (!reports.length) { box.appendChild(el("p", { "class": "empty" }, T.history_none)); return; }
      var grid = el("div", { "class": "history-charts" });
      FIGURES.forEach(function (figure) {
        var points = figureSeries(reports, figure.code);
        var fig = el("figure", { "class": "history-chart", "data-figure": figure.code });
        fig.appendChild(el("figcaption", {}, figureName(figure)));
        if (!points.length) {
          fig.appendChild(el("p", { "class": "empty" }, T.history_no_figure));
        } else {
          fig.appendChild(chart(figure, points, provinceName));
          fig.appendChild(weeksTable(figure, points));
        }
        grid.appendChild(fig);
      });
      box.appendChild(grid);
      box.setAttribute("data-province", code);
    }

    function choose(code, scroll) {
      chosen = code && NAMES[code] ? code : null;
      var select = document.getElementById("province");
      if (select.value !== (chosen || "")) select.value = chosen || "";
      keepProvinceInLinks();
      if (window.history && window.history.replaceState) {
        // No fragment: one in the address when the page finishes loading would scroll to it.
        window.history.replaceState(null, "", hrefFor(chosen));
      }
      var box = document.getElementById("history-body");
      box.textContent = "";
      box.removeAttribute("data-province");
      var title = document.getElementById("history-title");
      if (!chosen) {
        title.textContent = T.history_title;
        box.appendChild(el("p", { "class": "empty" }, T.history_choose));
        return;
      }
      title.textContent = fill(T.history_of, { name: NAMES[chosen] });
      box.appendChild(el("p", { "class": "empty" }, T.history_loading));
      if (scroll) document.getElementById("history").scrollIntoView();
      var ask = asked += 1, code_ = chosen;
      window.fetch("/api/provinces/" + encodeURIComponent(code_) + "/reports",
        { headers: { accept: "application/json" }, cache: "no-store" })
        .then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.json();
        })
        .then(function (answer) { if (ask === asked) renderHistory(code_, answer); })
        .catch(function () {
          if (ask !== asked) return;
          box.textContent = "";
          box.appendChild(el("p", { "class": "empty failed" }, T.history_failed));
        });
    }

    document.getElementById("province-form").addEventListener("submit", function (event) {
      event.preventDefault();
      choose(document.getElementById("province").value, false);
    });
    document.getElementById("province").addEventListener("change", function (event) {
      choose(event.target.value, false);
    });

    var live = document.getElementById("live");
    function poll() {
      window.fetch("/api/provinces/reports/" + encodeURIComponent(WEEK),
        { headers: { accept: "application/json" }, cache: "no-store" })
        .then(function (response) {
          if (!response.ok) throw new Error(String(response.status));
          return response.text();
        })
        .then(function (text) {
          live.className = "live on"; live.title = T.live;
          document.getElementById("updated").textContent = T.updated + " " +
            localDigits(new Date().toLocaleTimeString(LANG === "fa" ? "fa-IR" : "en-GB"), LANG);
          show(text);
        })
        .catch(function () { live.className = "live"; live.title = T.offline; });
    }

    show(document.getElementById("initial").textContent);
    if (window.fetch) {
      choose(config.province, false);
      window.setInterval(poll, POLL_MILLISECONDS);
    }
  }

  if (typeof module === "object" && module.exports) module.exports = HELPERS;
  if (typeof document !== "undefined") startPage();
})();
