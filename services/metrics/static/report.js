// The provincial directorates' weekly report form. The browser asks identity's token
// endpoint for the directorate's token itself (or takes a pasted one), reads the
// province's projects and reports from this service, submits the report with PUT, and
// shows each of the server's errors, in Persian and English, next to its field. Every
// text goes into the DOM through textContent, never as markup; no dependencies.
//
// The helpers above `startPage` are pure (no DOM): under node, `require` returns them.
(function () {
  "use strict";

  var TEXT = {
    fa: {
      dashboard: "داشبورد زنده",
      credentials: "اعتبارنامه اداره کل",
      credentials_hint: "شناسه و رمز کلاینت اداره کل (با دسترسی programme:report) مستقیم به سرویس هویت فرستاده می‌شود و جایی نگه داشته نمی‌شود.",
      client_id: "شناسه کلاینت",
      client_secret: "رمز کلاینت",
      or_token: "یا توکن دسترسی را بچسبانید:",
      access_token: "توکن دسترسی",
      which: "استان و هفته",
      province: "استان",
      week: "هفته (شنبه تا جمعه)",
      current_week: "{week} (هفته جاری)",
      week_note: "گزارش هفته‌ای که گذشته پذیرفته می‌شود و دیرکرد آن ثبت می‌شود. ارسال دوباره برای همان هفته اصلاحیه است و گزارش پیشین در تاریخچه می‌ماند.",
      figures: "شاخص‌های استان",
      figures_hint: "هر شاخصی را که این هفته دارید بنویسید. اگر رقمی از هفته پیش کمتر است، علت کاهش را بنویسید.",
      projects: "پیشرفت پروژه‌ها (درصد)",
      no_projects: "پروژه‌ای به این استان واگذار نشده است.",
      national: "ملی",
      provincial: "استانی",
      previous: "آخرین رقم پیشین: {value} (هفته {week})",
      this_week: "رقم ثبت‌شده برای این هفته: {value}",
      reason: "علت کاهش (در صورت کاهش)",
      percent: "درصد",
      count: "شمار",
      submit: "ارسال گزارش",
      sending: "در حال ارسال…",
      not_a_number: "عدد درستی بنویسید.",
      need_credentials: "شناسه و رمز کلاینت یا توکن دسترسی را وارد کنید.",
      token_refused: "سرویس هویت توکن نداد ({status}).",
      unreachable: "سرویس در دسترس نیست؛ دوباره بکوشید.",
      created: "گزارش هفته {week} ثبت شد (نسخه {revision}).",
      corrected: "اصلاحیه گزارش هفته {week} ثبت شد (نسخه {revision}؛ نسخه‌های پیشین در تاریخچه می‌مانند).",
      unchanged: "این گزارش همان است که پیش‌تر ثبت شده بود؛ چیزی تغییر نکرد.",
      late: "این گزارش پس از پایان هفته رسید و دیرکرد آن ثبت شد."
    },
    en: {
      dashboard: "Live dashboard",
      credentials: "The directorate's credentials",
      credentials_hint: "The directorate's client id and secret (holding programme:report) go straight to the identity service and are kept nowhere.",
      client_id: "Client id",
      client_secret: "Client secret",
      or_token: "Or paste an access token:",
      access_token: "Access token",
      which: "Province and week",
      province: "Province",
      week: "Week (Saturday to Friday)",
      current_week: "{week} (this week)",
      week_note: "A week that has ended may still be reported; the report is marked late. Sending again for the same week is a correction, and the earlier report stays in the history.",
      figures: "The province's figures",
      figures_hint: "Fill in each figure you have this week. If a figure is lower than last week's, give the reason for the fall.",
      projects: "Projects' progress (percent)",
      no_projects: "No project is assigned to this province.",
      national: "national",
      provincial: "provincial",
      previous: "Latest earlier figure: {value} (week {week})",
      this_week: "Figure recorded for this week: {value}",
      reason: "Reason for a fall (if lower)",
      percent: "percent",
      count: "count",
      submit: "Send the report",
      sending: "Sending…",
      not_a_number: "Write a number.",
      need_credentials: "Enter the client id and secret, or an access token.",
      token_refused: "The identity service gave no token ({status}).",
      unreachable: "The service cannot be reached; try again.",
      created: "The report for week {week} is recorded (revision {revision}).",
      corrected: "The correction for week {week} is recorded (revision {revision}; the earlier revisions stay in the history).",
      unchanged: "This report is the one already recorded; nothing changed.",
      late: "The report arrived after its week ended and is marked late."
    }
  };

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (whole, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole;
    });
  }

  // A number as a directorate may type it: Persian or Arabic digits, the Persian decimal
  // separator, thousands separators. NaN if it is not one.
  function parseNumber(text) {
    var ascii = String(text)
      .replace(/[\u06F0-\u06F9]/g, function (d) { return String(d.charCodeAt(0) - 0x06F0); })
      .replace(/[\u0660-\u0669]/g, function (d) { return String(d.charCodeAt(0) - 0x0660); })
      .replace(/\u066B/g, ".")
      .replace(/[,\u066C\s]/g, "");
    if (!/^-?(\d+\.?\d*|\.\d+)$/.test(ascii)) return NaN;
    return Number(ascii);
  }

  // The report's body from what was typed: {figures, projects, reasons} with the entries
  // filled in, and the fields that hold no number.
  function buildReport(figures, projects, reasons) {
    var body = { figures: {}, projects: {}, reasons: {} };
    var bad = [];
    function take(into, entries, prefix) {
      Object.keys(entries).forEach(function (code) {
        var text = String(entries[code]).trim();
        if (text === "") return;
        var value = parseNumber(text);
        if (isNaN(value)) bad.push(prefix + code);
        else into[code] = value;
      });
    }
    take(body.figures, figures, "");
    take(body.projects, projects, "projects.");
    Object.keys(reasons).forEach(function (where) {
      var text = String(reasons[where]).trim();
      if (text !== "") body.reasons[where] = text;
    });
    return { body: body, bad: bad };
  }

  // Where a problem of the server goes: its `field` (a figure, `projects.<code>`,
  // `reasons.<field>`, `week`, `figures`), or `general` for what names no field.
  function placeOf(error, known) {
    var field = error && typeof error.field === "string" ? error.field : "general";
    return known.indexOf(field) >= 0 ? field : "general";
  }

  // The latest figure of each field in the province's reports of weeks before `week`
  // (weeks labelled YYYY-Www compare as text), and the figures recorded for `week`.
  function figuresAround(reports, week) {
    var earlier = {};
    var current = null;
    (reports || []).forEach(function (report) {
      if (report.week === week) current = report;
      if (report.week >= week) return;
      Object.keys(report.figures || {}).forEach(function (code) {
        earlier[code] = { value: report.figures[code], week: report.week };
      });
      Object.keys(report.projects || {}).forEach(function (code) {
        earlier["projects." + code] = { value: report.projects[code], week: report.week };
      });
    });
    return { earlier: earlier, current: current };
  }

  // The province of a directorate's client id (`ict-ir-15.3f…` → `IR-15`), or null.
  function provinceOfClient(clientId) {
    var match = /^ict-ir-(\d{2})\./i.exec(String(clientId).trim());
    return match ? "IR-" + match[1] : null;
  }

  var HELPERS = {
    TEXT: TEXT, fill: fill, parseNumber: parseNumber, buildReport: buildReport,
    placeOf: placeOf, figuresAround: figuresAround, provinceOfClient: provinceOfClient
  };

  function startPage() {
    var lang = document.documentElement.lang === "en" ? "en" : "fa";
    var other = lang === "fa" ? "en" : "fa";
    var t = TEXT[lang];
    var config = JSON.parse(document.getElementById("config").textContent);
    var form = document.getElementById("report-form");
    var provinceSelect = document.getElementById("province");
    var weekSelect = document.getElementById("week");
    var figuresBox = document.getElementById("figures");
    var projectsBox = document.getElementById("projects");
    var outcome = document.getElementById("outcome");
    var submit = document.getElementById("submit");
    var token = { value: null, key: null, until: 0 };

    function el(tag, attributes, text) {
      var node = document.createElement(tag);
      Object.keys(attributes || {}).forEach(function (name) {
        node.setAttribute(name, attributes[name]);
      });
      if (text !== undefined && text !== null) node.textContent = String(text);
      return node;
    }

    Array.prototype.forEach.call(document.querySelectorAll("[data-text]"), function (node) {
      node.textContent = t[node.getAttribute("data-text")] || "";
    });
    document.getElementById("week-note").textContent = t.week_note;

    config.provinces.forEach(function (p) {
      provinceSelect.appendChild(el("option", { value: p.code }, p["name_" + lang] + " (" + p.code + ")"));
    });
    config.weeks.forEach(function (week, index) {
      var label = index === 0 ? fill(t.current_week, { week: week }) : week;
      weekSelect.appendChild(el("option", { value: week }, label));
    });

    function errorBoxes() {
      return Array.prototype.slice.call(document.querySelectorAll(".field-error"));
    }

    function clearErrors() {
      errorBoxes().forEach(function (box) { box.textContent = ""; });
      Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (input) {
        input.removeAttribute("aria-invalid");
      });
    }

    // Both languages, the page's first.
    function showError(field, texts) {
      var box = errorBoxes().filter(function (b) { return b.getAttribute("data-field") === field; })[0];
      if (!box) box = errorBoxes().filter(function (b) { return b.getAttribute("data-field") === "general"; })[0];
      [lang, other].forEach(function (language) {
        if (texts[language]) box.appendChild(el("p", { lang: language, dir: language === "fa" ? "rtl" : "ltr" }, texts[language]));
      });
      var input = form.querySelector("[data-input=\"" + field.replace(/["\\]/g, "") + "\"]");
      if (input) input.setAttribute("aria-invalid", "true");
    }

    function row(field, name, detail, kind) {
      var line = el("div", { "class": "row" });
      var title = el("label", { "for": "in-" + field, "class": "name" }, name);
      if (detail) title.appendChild(el("span", { "class": "previous" }, detail));
      line.appendChild(title);
      line.appendChild(el("input", {
        id: "in-" + field, "class": "value", inputmode: "decimal", dir: "ltr",
        "data-input": field, "data-kind": kind, "aria-label": name
      }));
      line.appendChild(el("input", {
        "class": "reason", "data-input": "reasons." + field, "data-reason-for": field,
        placeholder: t.reason, "aria-label": t.reason + ": " + name, maxlength: "500"
      }));
      line.appendChild(el("div", { "class": "field-error", "data-field": field, "aria-live": "polite" }));
      line.appendChild(el("div", { "class": "field-error", "data-field": "reasons." + field, "aria-live": "polite" }));
      return line;
    }

    function hint(around, field) {
      var parts = [];
      var before = around.earlier[field];
      if (before) parts.push(fill(t.previous, { value: before.value, week: before.week }));
      return parts.join(" · ");
    }

    function prefill(around) {
      var current = around.current;
      if (!current) return;
      Array.prototype.forEach.call(form.querySelectorAll("input.value"), function (input) {
        var field = input.getAttribute("data-input");
        var value = field.indexOf("projects.") === 0
          ? (current.projects || {})[field.slice(9)]
          : (current.figures || {})[field];
        if (value !== undefined) input.value = String(value);
      });
      Array.prototype.forEach.call(form.querySelectorAll("input.reason"), function (input) {
        var reason = (current.reasons || {})[input.getAttribute("data-reason-for")];
        if (reason !== undefined) input.value = reason;
      });
    }

    var loaded = 0;
    function load() {
      var province = provinceSelect.value;
      var week = weekSelect.value;
      var mine = ++loaded;
      fetch("/api/provinces/" + encodeURIComponent(province) + "/reports", { headers: { accept: "application/json" } })
        .then(function (response) { return response.ok ? response.json() : { projects: [], reports: [] }; })
        .catch(function () { return { projects: [], reports: [] }; })
        .then(function (data) {
          if (mine !== loaded) return;  // a later choice is being loaded
          var around = figuresAround(data.reports, week);
          figuresBox.textContent = "";
          config.figures.forEach(function (figure) {
            var name = figure["name_" + lang] + " (" + (figure.kind === "share" ? t.percent : t.count) + ")";
            figuresBox.appendChild(row(figure.code, name, hint(around, figure.code), figure.kind));
          });
          projectsBox.textContent = "";
          (data.projects || []).forEach(function (project) {
            var field = "projects." + project.code;
            var name = project["name_" + lang] + " (" + t[project.scope] + ")";
            projectsBox.appendChild(row(field, name, hint(around, field), "share"));
          });
          document.getElementById("projects-note").textContent = (data.projects || []).length ? "" : t.no_projects;
          prefill(around);
          clearErrors();
        });
    }

    function credentials() {
      var pasted = document.getElementById("access-token").value.trim();
      if (pasted) return Promise.resolve(pasted.replace(/^Bearer\s+/i, ""));
      var id = document.getElementById("client-id").value.trim();
      var secret = document.getElementById("client-secret").value;
      if (!id || !secret) return Promise.reject({ field: "credentials", texts: TEXT_BOTH("need_credentials") });
      var key = id + "\n" + secret;
      if (token.key === key && token.until > Date.now()) return Promise.resolve(token.value);
      return fetch(config.token_endpoint, {
        method: "POST",
        headers: {
          authorization: "Basic " + btoa(id + ":" + secret),
          "content-type": "application/x-www-form-urlencoded"
        },
        body: "grant_type=client_credentials&scope=" + encodeURIComponent(config.scope),
        credentials: "omit"
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (answer) {
          if (!response.ok || !answer.access_token) {
            var texts = answer.messages || TEXT_BOTH("token_refused", { status: response.status });
            return Promise.reject({ field: "credentials", texts: texts });
          }
          token = { value: answer.access_token, key: key, until: Date.now() + 1000 * Math.max(30, (answer.expires_in || 300) - 30) };
          return answer.access_token;
        });
      }, function () {
        return Promise.reject({ field: "credentials", texts: TEXT_BOTH("unreachable") });
      });
    }

    function TEXT_BOTH(key, values) {
      return { fa: fill(TEXT.fa[key], values || {}), en: fill(TEXT.en[key], values || {}) };
    }

    function typed(selector, attribute) {
      var values = {};
      Array.prototype.forEach.call(form.querySelectorAll(selector), function (input) {
        values[input.getAttribute(attribute)] = input.value;
      });
      return values;
    }

    function showProblem(problem) {
      var known = errorBoxes().map(function (b) { return b.getAttribute("data-field"); });
      var listed = Array.isArray(problem.errors) ? problem.errors : [];
      var placed = false;
      listed.forEach(function (error) {
        if (error && (error.fa || error.en)) {
          showError(placeOf(error, known), { fa: error.fa, en: error.en });
          placed = true;
        }
      });
      if (!placed) {
        showError("general", problem.messages || TEXT_BOTH("unreachable"));
        listed.forEach(function (error) {
          if (error && error.reason) {
            showError("general", { en: (error.location || []).join(".") + ": " + error.reason });
          }
        });
      }
    }

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors();
      outcome.textContent = "";
      var figures = {};
      var projects = {};
      var values = typed("input.value", "data-input");
      Object.keys(values).forEach(function (field) {
        if (field.indexOf("projects.") === 0) projects[field.slice(9)] = values[field];
        else figures[field] = values[field];
      });
      var built = buildReport(figures, projects, typed("input.reason", "data-reason-for"));
      if (built.bad.length) {
        built.bad.forEach(function (field) { showError(field, TEXT_BOTH("not_a_number")); });
        return;
      }
      var province = provinceSelect.value;
      var week = weekSelect.value;
      submit.disabled = true;
      submit.textContent = t.sending;
      credentials()
        .then(function (access) {
          return fetch("/api/provinces/" + encodeURIComponent(province) + "/reports/" + encodeURIComponent(week), {
            method: "PUT",
            headers: {
              authorization: "Bearer " + access,
              "content-type": "application/json",
              accept: "application/json",
              "accept-language": lang
            },
            body: JSON.stringify(built.body)
          }).then(function (response) {
            return response.json().catch(function () { return {}; }).then(function (answer) {
              if (!response.ok) return Promise.reject({ problem: answer });
              var report = answer.report || {};
              var lines = [fill(t[answer.outcome] || t.created, { week: report.week, revision: report.revision })];
              if (report.late && answer.outcome !== "unchanged") lines.push(t.late);
              outcome.textContent = lines.join(" ");
              load();
            });
          }, function () {
            return Promise.reject({ field: "general", texts: TEXT_BOTH("unreachable") });
          });
        })
        .catch(function (failure) {
          if (failure && failure.problem) showProblem(failure.problem);
          else if (failure && failure.texts) showError(failure.field || "general", failure.texts);
          else showError("general", TEXT_BOTH("unreachable"));
        })
        .then(function () {
          submit.disabled = false;
          submit.textContent = t.submit;
        });
    });

    // A directorate's client id starts with its agency code (`ict-ir-15.…`): its province.
    document.getElementById("client-id").addEventListener("change", function (event) {
      var province = provinceOfClient(event.target.value);
      if (province && province !== provinceSelect.value && config.provinces.some(function (p) { return p.code === province; })) {
        provinceSelect.value = province;
        load();
      }
    });
    provinceSelect.addEventListener("change", load);
    weekSelect.addEventListener("change", load);
    load();
  }

  if (typeof module === "object" && module.exports) module.exports = HELPERS;
  else startPage();
})();
