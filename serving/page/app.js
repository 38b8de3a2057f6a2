/* The retention team's page: asks for the API key once per tab, then reads
   GET /risk-list (and /risk-list.csv for downloads) from this same service.
   Plain JavaScript, no libraries, nothing loaded from elsewhere. */
"use strict";

(function () {
  const KEY_STORAGE = "churnml.apiKey";
  const PAGE_SIZES = [25, 50, 100, 250, 500, 1000];
  const DEFAULT_LIMIT = 250; // the whole day's list (capacity + suppressed) on one page
  const SEARCH_DELAY_MS = 250;
  const BAND_ORDER = { high: 3, medium: 2, low: 1 };
  const CHANGE_ORDER = { new: 4, risen: 3, steady: 2, fallen: 1 };
  const CHANGE_LABEL = { new: "New", risen: "▲ Risen", fallen: "▼ Fallen", steady: "= Steady" };
  const RANK_BY_LABEL = {
    "saved-revenue": "revenue a call keeps",
    revenue: "revenue at risk",
    probability: "churn probability",
  };

  const $ = (selector) => document.querySelector(selector);
  const el = {
    body: document.body,
    main: $("#main"),
    error: $("#error"),
    keyPanel: $("#key-panel"),
    keyForm: $("#key-form"),
    key: $("#key"),
    keyState: $("#key-state"),
    forget: $("#forget-key"),
    content: $("#content"),
    date: $("#date"),
    model: $("#model"),
    created: $("#created"),
    dataThrough: $("#data-through"),
    stale: $("#stale"),
    capacity: $("#capacity"),
    rankBy: $("#rank-by"),
    rankByReason: $("#rank-by-reason"),
    scored: $("#scored"),
    thresholds: $("#thresholds"),
    previous: $("#previous"),
    drift: $("#drift"),
    driftWarnings: $("#drift-warnings"),
    filters: $("#filters"),
    scope: $("#scope"),
    band: $("#band"),
    segment: $("#segment"),
    search: $("#search"),
    pageSize: $("#page-size"),
    reset: $("#reset"),
    download: $("#download"),
    listTitle: $("#list-title"),
    status: $("#status"),
    table: $("#rows"),
    tbody: $("#rows tbody"),
    headers: Array.from(document.querySelectorAll("#rows th[data-sort]")),
    prev: $("#prev"),
    next: $("#next"),
    pageInfo: $("#page-info"),
    departuresTitle: $("#departures-title"),
    departuresEmpty: $("#departures-empty"),
    departuresTable: $("#departures-table"),
    departuresBody: $("#departures-table tbody"),
    report: $("#report"),
    reportNote: $("#report-note"),
    reportTable: $("#report-table"),
    reportBody: $("#report-table tbody"),
    detail: $("#detail"),
    detailTitle: $("#detail-title"),
    detailClose: $("#detail-close"),
    detailError: $("#detail-error"),
    detailBody: $("#detail-body"),
    detailProb: $("#detail-prob"),
    detailRank: $("#detail-rank"),
    detailProfile: $("#detail-profile"),
    detailFresh: $("#detail-fresh"),
    detailAction: $("#detail-action"),
    detailCurve: $("#detail-curve"),
    detailCurveText: $("#detail-curve-text"),
    detailCurveChart: $("#detail-curve-chart"),
    detailReasons: $("#detail-reasons"),
    detailNote: $("#detail-note"),
    detailHistory: $("#detail-history tbody"),
    detailContactsTitle: $("#detail-contacts-title"),
    detailContacts: $("#detail-contacts tbody"),
    detailCases: $("#detail-cases tbody"),
    retentionEmpty: $("#retention-empty"),
    retentionList: $("#retention-list"),
  };

  /* What is asked for; mirrored in the address bar (without the key). */
  const state = {
    date: "",
    band: "",
    segment: "",
    customer: "",
    scope: "list",
    limit: DEFAULT_LIMIT,
    offset: 0,
  };
  const sort = { key: "rank", dir: "ascending" };
  let current = null; // the last page received
  let requestSeq = 0;
  let controller = null;
  let memoryKey = ""; // when session storage is unavailable

  /* ---------- formatting ---------------------------------------------------------------- */
  const numberFmt = new Intl.NumberFormat("en", { maximumFractionDigits: 0 });
  const moneyFmt = new Intl.NumberFormat("en", {
    minimumFractionDigits: 2,
    maximumFractionDigits: 2,
  });

  function pct(p, digits = 1) {
    return p == null ? "–" : (p * 100).toFixed(digits) + "%";
  }

  /* A threshold as the legend shows it: the exact percentage (6 significant digits). */
  function thresholdText(t) {
    if (t == null) return "–";
    return String(Number((t * 100).toPrecision(6))) + "%";
  }

  function shownNumber(text) {
    return parseFloat(text);
  }

  /* The band a shown percentage reads as against the legend's shown thresholds. */
  function bandOfShown(text, thresholds) {
    const v = shownNumber(text);
    if (thresholds.high != null && v >= shownNumber(thresholdText(thresholds.high))) return "high";
    if (thresholds.medium != null && v >= shownNumber(thresholdText(thresholds.medium))) {
      return "medium";
    }
    return "low";
  }

  /* A probability with one decimal, or more where one decimal would put it on the other
     side of a threshold the legend shows (so the badge and the legend always agree). */
  function probabilityText(p, band, thresholds) {
    if (p == null) return "–";
    let text = pct(p);
    if (!band || !thresholds) return text;
    for (let digits = 2; digits <= 6 && bandOfShown(text, thresholds) !== band; digits++) {
      text = pct(p, digits);
    }
    return text;
  }
  window.churnmlPage = { probabilityText, thresholdText };

  function duration(seconds) {
    if (seconds == null) return "–";
    if (seconds < 90) return `${Math.round(seconds)} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
    return `${(seconds / 86400).toFixed(1)} days`;
  }

  function days(n) {
    return n === 1 ? "1 day" : `${n} days`;
  }

  function money(v) {
    return v == null ? "–" : moneyFmt.format(v);
  }

  function when(iso) {
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return iso || "–";
    return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function node(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k === "class") n.className = v;
      else if (k === "text") n.textContent = v;
      else if (k.startsWith("data-")) n.setAttribute(k, String(v));
      else n.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) {
      if (c == null || c === false) continue;
      n.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return n;
  }

  /* ---------- key ----------------------------------------------------------------------- */
  function getKey() {
    try {
      return sessionStorage.getItem(KEY_STORAGE) || "";
    } catch (e) {
      return "";
    }
  }

  function setKey(key) {
    try {
      if (key) sessionStorage.setItem(KEY_STORAGE, key);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch (e) {
      /* storage disabled: the key lives as long as the page */
    }
    memoryKey = key;
  }

  function key() {
    return getKey() || memoryKey;
  }

  function askForKey(message) {
    if (controller) controller.abort();
    el.keyPanel.hidden = false;
    el.content.hidden = true;
    el.forget.hidden = true;
    el.keyState.hidden = true;
    el.body.dataset.state = "key";
    if (message) showError(message);
    el.key.value = "";
    el.key.focus();
  }

  function keyAccepted() {
    el.keyPanel.hidden = true;
    el.content.hidden = false;
    el.forget.hidden = false;
    el.keyState.hidden = false;
  }

  /* ---------- errors -------------------------------------------------------------------- */
  function showError(message) {
    el.error.textContent = message;
    el.error.hidden = false;
  }

  function clearError() {
    el.error.textContent = "";
    el.error.hidden = true;
  }

  async function problem(response) {
    let text = "";
    try {
      text = await response.text();
      const body = JSON.parse(text);
      if (typeof body.error === "string") return body.error;
      if (Array.isArray(body.detail) && body.detail.length) {
        return body.detail
          .map((d) => (d.loc ? d.loc.slice(1).join(".") + ": " : "") + (d.msg || ""))
          .join("; ");
      }
    } catch (e) {
      /* not JSON */
    }
    return text.trim().slice(0, 300) || response.statusText || "no details";
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  function explain(error) {
    if (error.status === 401 || error.status === 403) {
      return `The key was not accepted (${error.message}). Enter a valid API key.`;
    }
    if (error.status === 404) return `No list to show: ${error.message}.`;
    if (error.status === 422) return `The service did not accept the filters: ${error.message}.`;
    if (error.status) return `The service answered with an error (${error.status}): ${error.message}`;
    return `Could not reach the service (${error.message}). Check your connection and try again.`;
  }

  /* ---------- API ----------------------------------------------------------------------- */
  function query(forCsv) {
    const q = new URLSearchParams();
    const date = forCsv && current ? current.date : state.date;
    if (date) q.set("date", date);
    if (state.band) q.set("band", state.band);
    if (state.segment) q.set("segment", state.segment);
    if (state.customer) q.set("customer", state.customer);
    q.set("scope", state.scope);
    if (!forCsv) {
      q.set("limit", String(state.limit));
      q.set("offset", String(state.offset));
    }
    return q;
  }

  async function call(path, signal) {
    let response;
    try {
      response = await fetch(path, {
        headers: { Authorization: "Bearer " + key(), Accept: "application/json, text/csv" },
        cache: "no-store",
        credentials: "omit",
        signal,
      });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new ApiError(0, e.message || "network error");
    }
    if (!response.ok) throw new ApiError(response.status, await problem(response));
    return response;
  }

  async function load() {
    if (!key()) {
      askForKey();
      return;
    }
    if (controller) controller.abort();
    controller = new AbortController();
    const seq = ++requestSeq;
    const q = query(false);
    el.body.dataset.state = "loading";
    el.table.setAttribute("aria-busy", "true");
    el.status.textContent = "Loading…";
    writeAddress();
    try {
      const response = await call("/risk-list?" + q.toString(), controller.signal);
      const page = await response.json();
      if (seq !== requestSeq) return;
      clearError();
      keyAccepted();
      current = page;
      render(page);
      el.main.dataset.query = q.toString();
      el.body.dataset.state = "ready";
      loadReport();
    } catch (e) {
      if (e.name === "AbortError" || seq !== requestSeq) return;
      el.table.removeAttribute("aria-busy");
      if (e.status === 401 || e.status === 403) {
        setKey("");
        askForKey(explain(e));
        return;
      }
      keyAccepted();
      showError(explain(e));
      el.status.textContent = "";
      el.main.dataset.query = q.toString();
      el.body.dataset.state = "error";
      if (e.status === 404) showNoList();
      else if (!e.status || e.status >= 500) offerRetry();
    }
  }

  /* ---------- how our lists did (GET /report, read-only) ------------------------------- */
  let reportAsked = false;

  async function loadReport() {
    if (reportAsked) return;
    reportAsked = true;
    el.report.dataset.state = "loading";
    try {
      const response = await call("/report");
      renderReport(await response.json());
      el.report.dataset.state = "ready";
    } catch (e) {
      reportAsked = false; // asked again with the next list
      el.reportNote.textContent = "The report could not be loaded: " + explain(e);
      el.reportTable.hidden = true;
      el.report.dataset.state = "error";
    }
  }

  function signedPoints(v) {
    return (v >= 0 ? "+" : "−") + Math.abs(v * 100).toFixed(1);
  }

  function gapText(d) {
    if (!d || d.value === null) return "–";
    return `${signedPoints(d.value)} points (${signedPoints(d.low)} to ${signedPoints(d.high)})`;
  }

  function keptText(k) {
    if (!k || k.value === null) return "–";
    return `${money(k.value)} (${money(k.low)} to ${money(k.high)})`;
  }

  function bandsText(entry) {
    return entry.bands
      .filter((b) => b.customers > 0)
      .map((b) => {
        if (entry.status !== "done") return `${b.band} ${pct(b.predicted)} (estimate)`;
        const predicted = b.predicted_untreated === null ? "–" : pct(b.predicted_untreated);
        const realised = b.realised === null ? "–" : pct(b.realised);
        return `${b.band} ${predicted} → ${realised}`;
      })
      .join("; ");
  }

  function renderReport(report) {
    el.reportNote.textContent = report.lists.length
      ? `As of ${report.as_of}. ${report.interval_method}; ${report.precision_definition}. ` +
        `Fewer than ${report.min_controls} picks in a group: too few to conclude.`
      : "No list is stored yet.";
    el.reportBody.replaceChildren(
      ...report.lists.map((entry) => {
        const r = entry.realised;
        const status =
          entry.status === "done" ? "done" : `pending until ${entry.pending_until}`;
        return node(
          "tr",
          { "data-list-date": entry.list_date, "data-status": entry.status },
          node("td", {}, entry.list_date),
          node("td", { class: "report-status" }, status),
          node("td", { class: "num" }, String(entry.picks)),
          node("td", { class: "num" }, String(entry.treated)),
          node("td", { class: "num" }, String(entry.control)),
          node("td", { class: "num" }, r && r.treated.rate !== null ? pct(r.treated.rate) : "–"),
          node("td", { class: "num" }, r && r.control.rate !== null ? pct(r.control.rate) : "–"),
          node("td", { class: "report-gap" }, r ? gapText(r.difference) : "–"),
          node("td", { class: "report-kept" }, r ? keptText(r.revenue_kept) : "–"),
          node(
            "td",
            { class: "num" },
            r
              ? r.precision_at_k.rate === null
                ? "–"
                : pct(r.precision_at_k.rate)
              : `${pct(entry.expected_precision_at_k)} (estimate)`,
          ),
          node("td", { class: "report-bands" }, bandsText(entry)),
          node("td", { class: "report-verdict" }, entry.verdict),
        );
      }),
    );
    el.reportTable.hidden = report.lists.length === 0;
  }

  function offerRetry() {
    const again = node("button", { type: "button", class: "inline" }, "Try again");
    again.addEventListener("click", () => load());
    el.error.append(" ", again);
  }

  function showNoList() {
    current = null;
    el.tbody.replaceChildren();
    el.content.hidden = true;
    if (state.date) {
      const latest = node("button", { type: "button", id: "latest", class: "inline" }, "Open the latest list");
      latest.addEventListener("click", () => change(() => (state.date = "")));
      el.error.append(" ", latest);
    }
  }

  async function downloadCsv() {
    if (!current) return;
    const q = query(true);
    el.download.disabled = true;
    const label = el.download.textContent;
    el.download.textContent = "Preparing…";
    try {
      const response = await call("/risk-list.csv?" + q.toString());
      const blob = await response.blob();
      const disposition = response.headers.get("content-disposition") || "";
      const match = /filename="?([^";]+)"?/i.exec(disposition);
      const name = match ? match[1] : `risk-list-${current.date}.csv`;
      const url = URL.createObjectURL(new Blob([blob], { type: "text/csv" }));
      const a = node("a", { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      el.status.textContent = `Downloaded ${name} (${current.total} rows).`;
    } catch (e) {
      if (e.status === 401 || e.status === 403) {
        setKey("");
        askForKey(explain(e));
      } else {
        showError("Download failed. " + explain(e));
      }
    } finally {
      el.download.disabled = false;
      el.download.textContent = label;
    }
  }

  /* ---------- address bar --------------------------------------------------------------- */
  function readAddress() {
    const q = new URLSearchParams(location.search);
    state.date = /^\d{4}-\d{2}-\d{2}$/.test(q.get("date") || "") ? q.get("date") : "";
    state.band = ["high", "medium", "low"].includes(q.get("band")) ? q.get("band") : "";
    state.segment = (q.get("segment") || "").slice(0, 200);
    state.customer = (q.get("customer") || "").slice(0, 200);
    state.scope = q.get("scope") === "all" ? "all" : "list";
    const limit = parseInt(q.get("limit"), 10);
    state.limit = PAGE_SIZES.includes(limit) ? limit : DEFAULT_LIMIT;
    const offset = parseInt(q.get("offset"), 10);
    state.offset = Number.isFinite(offset) && offset > 0 ? offset : 0;
  }

  function writeAddress() {
    const q = new URLSearchParams();
    for (const name of ["date", "band", "segment", "customer"]) {
      if (state[name]) q.set(name, state[name]);
    }
    if (state.scope !== "list") q.set("scope", state.scope);
    if (state.limit !== DEFAULT_LIMIT) q.set("limit", String(state.limit));
    if (state.offset) q.set("offset", String(state.offset));
    const search = q.toString();
    const url = location.pathname + (search ? "?" + search : "");
    if (url !== location.pathname + location.search) history.replaceState(null, "", url);
  }

  function syncControls() {
    el.scope.value = state.scope;
    el.band.value = state.band;
    ensureOption(el.segment, state.segment);
    el.segment.value = state.segment;
    if (el.search.value !== state.customer) el.search.value = state.customer;
    el.pageSize.value = String(state.limit);
  }

  function ensureOption(select, value) {
    if (!value) return;
    if (!Array.from(select.options).some((o) => o.value === value)) {
      select.append(node("option", { value, text: value }));
    }
  }

  /* ---------- rendering ----------------------------------------------------------------- */
  function render(page) {
    if (!el.detail.hidden && el.detail.dataset.date !== page.date) closeDetail();
    renderSummary(page);
    renderDrift(page.drift);
    renderRows(page);
    renderPager(page);
    renderDepartures(page);
    el.download.disabled = false;
    el.table.removeAttribute("aria-busy");
  }

  function renderSummary(page) {
    el.date.replaceChildren(
      ...page.dates.map((d, i) =>
        node("option", { value: d, text: i === 0 ? `${d} (latest)` : d }),
      ),
    );
    ensureOption(el.date, page.date);
    el.date.value = page.date;

    const segments = [node("option", { value: "", text: "All segments" })];
    for (const s of page.segments) segments.push(node("option", { value: s, text: s }));
    el.segment.replaceChildren(...segments);
    ensureOption(el.segment, state.segment);
    el.segment.value = state.segment;

    el.model.textContent = `${page.model_name} version ${page.model_version}`;
    el.created.textContent = when(page.created_at);
    renderFreshness(page);
    el.capacity.textContent =
      `${numberFmt.format(page.capacity)} a day` +
      ` (${numberFmt.format(page.on_list)} on the list)`;
    el.rankBy.textContent = RANK_BY_LABEL[page.rank_by] || page.rank_by;
    el.rankByReason.textContent = page.rank_by_reason || "not recorded";
    const t = page.band_thresholds || {};
    const s = page.band_shares || {};
    el.scored.textContent =
      `${numberFmt.format(page.scored)} customers ` +
      `(high ${pct(s.high, 0)}, medium ${pct(s.medium, 0)}, low ${pct(s.low, 0)})`;
    el.thresholds.replaceChildren(
      bandBadge("high"),
      `≥ ${thresholdText(t.high)}`,
      node("span", { class: "sep" }),
      bandBadge("medium"),
      `≥ ${thresholdText(t.medium)}`,
      node("span", { class: "sep" }),
      bandBadge("low"),
      "below",
    );
    el.previous.textContent = page.previous_date
      ? `the list of ${page.previous_date}`
      : "nothing (first list)";
    el.listTitle.textContent =
      state.scope === "all"
        ? `Everyone scored on ${page.date}`
        : `Customers to call on ${page.date}`;
  }

  function renderFreshness(page) {
    el.dataThrough.textContent = page.data_through || "not recorded";
    el.stale.hidden = !page.data_stale;
    el.stale.textContent = page.data_stale
      ? `⚠ Old data: the data ends on ${page.data_through}, ${page.data_lag_days} ` +
        `${page.data_lag_days === 1 ? "day" : "days"} ` +
        `before this list's day (${page.date}). The scores do not see the latest ` +
        "contacts; tell the data team."
      : "";
  }

  function renderDrift(drift) {
    if (!drift || !drift.warning) {
      el.drift.hidden = true;
      el.driftWarnings.replaceChildren();
      return;
    }
    el.driftWarnings.replaceChildren(...drift.warnings.map((w) => node("li", { text: w })));
    el.drift.hidden = false;
  }

  function bandBadge(band) {
    return node("span", { class: `badge band-${band}`, text: band });
  }

  function changeCell(row) {
    const td = node("td", { class: "change" });
    if (row.change) {
      const badge = node("span", { class: `badge change-${row.change}` }, CHANGE_LABEL[row.change]);
      td.append(badge);
    }
    if (row.previous_rank != null) {
      const was = `was #${row.previous_rank}, ${pct(row.previous_probability)}`;
      td.append(node("span", { class: "was" }, was));
    } else if (current.previous_date) {
      td.append(node("span", { class: "was" }, "not scored then"));
    } else {
      td.append(node("span", { class: "was" }, "first list"));
    }
    return td;
  }

  function statusCell(row) {
    const td = node("td", { class: "status-cell" });
    if (row.not_listed_because && (row.suppressed || !row.on_list)) {
      td.append(node("span", { class: "tag off-list", text: row.not_listed_because }));
    } else if (row.suppressed) {
      const day = node("span", { class: "nowrap" }, `${row.last_contacted || "recently"})`);
      td.append(node("span", { class: "tag suppressed" }, "Suppressed (contacted ", day));
    } else if (!row.on_list) {
      td.append(node("span", { class: "tag off-list", text: "Not on the list" }));
    } else if (row.group === "control") {
      td.append(node("span", { class: "tag control", text: "Control: do not call" }));
    } else {
      td.append(node("span", { class: "none", text: "to call" }));
    }
    return td;
  }

  /* The call effect in percentage points, with the revenue a call keeps below it. */
  function effectCell(row) {
    const td = node("td", { class: "num effect" });
    if (row.call_effect == null) {
      td.append("–");
      return td;
    }
    const points = (row.call_effect * 100).toFixed(1);
    td.append(`${row.call_effect > 0 ? "+" : ""}${points} pts`);
    td.append(node("span", { class: "sub" }, `${money(row.saved_revenue)} kept`));
    return td;
  }


  function rowStatus(row) {
    if (row.suppressed) return 0;
    if (!row.on_list) return 1;
    return row.group === "control" ? 2 : 3;
  }

  function sortValue(row, key) {
    switch (key) {
      case "risk_band":
        return BAND_ORDER[row.risk_band] || 0;
      case "change":
        return row.change ? CHANGE_ORDER[row.change] : null;
      case "status":
        return rowStatus(row);
      default:
        return row[key];
    }
  }

  function sortedRows(rows) {
    const { key, dir } = sort;
    const sign = dir === "ascending" ? 1 : -1;
    return rows
      .map((row, i) => ({ row, i }))
      .sort((a, b) => {
        const x = sortValue(a.row, key);
        const y = sortValue(b.row, key);
        if (x == null && y == null) return a.i - b.i;
        if (x == null) return 1; // empty values last, either way
        if (y == null) return -1;
        let c;
        if (typeof x === "number" && typeof y === "number") c = x - y;
        else c = String(x).localeCompare(String(y), "en", { numeric: true });
        return c !== 0 ? sign * c : a.row.rank - b.row.rank;
      })
      .map((x) => x.row);
  }

  function emptyRow(text) {
    return node("tr", { class: "empty" }, node("td", { colspan: 12, text }));
  }

  function renderRows(page) {
    const rows = sortedRows(page.rows);
    if (!rows.length) {
      el.tbody.replaceChildren(emptyRow("No customers match these filters."));
    } else {
      el.tbody.replaceChildren(...rows.map(renderRow));
    }
    for (const th of el.headers) {
      if (th.dataset.sort === sort.key) th.setAttribute("aria-sort", sort.dir);
      else th.removeAttribute("aria-sort");
    }
  }

  function renderRow(row) {
    const reasons = node("ul", { class: "reasons" });
    for (const r of row.reasons.slice(0, 3)) {
      reasons.append(node("li", { "data-code": r.code, text: r.text }));
    }
    const revenue = node("td", { class: "num" }, money(row.revenue_at_risk));
    if (row.monthly_revenue != null) {
      revenue.append(node("span", { class: "sub" }, `${money(row.monthly_revenue)} a month`));
    }
    return node(
      "tr",
      {
        "data-customer-id": row.customer_id,
        "data-band": row.risk_band,
        "data-rank": row.rank,
        "data-change": row.change || "",
        "data-suppressed": row.suppressed ? "true" : "false",
        "data-group": row.group || "",
        class: [
          row.suppressed ? "is-suppressed" : "",
          row.on_list ? "" : "is-off-list",
          row.group === "control" ? "is-control" : "",
        ]
          .filter(Boolean)
          .join(" "),
      },
      node("td", { class: "num rank", text: row.rank }),
      node(
        "th",
        { scope: "row", class: "customer" },
        node("button", {
          type: "button",
          class: "open-detail",
          "data-customer-id": row.customer_id,
          "aria-label": `Open ${row.customer_id}`,
          text: row.customer_id,
        }),
      ),
      node("td", { text: row.segment || "–" }),
      node("td", { text: row.plan || "–" }),
      node("td", {
        class: "num prob",
        text: probabilityText(row.churn_probability, row.risk_band, current.band_thresholds),
      }),
      node("td", {}, bandBadge(row.risk_band)),
      revenue,
      effectCell(row),
      node("td", { class: "reasons-col" }, reasons.childNodes.length ? reasons : "–"),
      node("td", { class: "action-col", text: row.action }),
      changeCell(row),
      statusCell(row),
    );
  }

  function renderPager(page) {
    const first = page.total ? page.offset + 1 : 0;
    const last = page.offset + page.rows.length;
    const what = state.scope === "all" ? "customers scored" : "customers on the list";
    const filtered = state.band || state.segment || state.customer ? " matching" : "";
    el.status.textContent = page.total
      ? `Showing ${first}–${last} of ${page.total}${filtered} ${what}.`
      : `No${filtered} ${what}.`;
    const pages = Math.max(1, Math.ceil(page.total / page.limit));
    const number = Math.floor(page.offset / page.limit) + 1;
    el.pageInfo.textContent = `Page ${Math.min(number, pages)} of ${pages}`;
    el.prev.disabled = page.offset <= 0;
    el.next.disabled = page.offset + page.limit >= page.total;
  }

  function renderDepartures(page) {
    el.departuresBody.replaceChildren();
    if (!page.previous_date) {
      el.departuresTitle.textContent = "Left the list";
      el.departuresEmpty.textContent = "This is the first list: nothing to compare with.";
      el.departuresEmpty.hidden = false;
      el.departuresTable.hidden = true;
      return;
    }
    el.departuresTitle.textContent = `Left the list since ${page.previous_date}`;
    if (!page.departures.length) {
      el.departuresEmpty.textContent = "No one left the list.";
      el.departuresEmpty.hidden = false;
      el.departuresTable.hidden = true;
      return;
    }
    el.departuresEmpty.hidden = true;
    el.departuresTable.hidden = false;
    for (const d of page.departures) {
      el.departuresBody.append(
        node(
          "tr",
          { "data-customer-id": d.customer_id },
          node("th", { scope: "row", class: "customer", text: d.customer_id }),
          node("td", { class: "num", text: `#${d.previous_rank}` }),
          node("td", { class: "num", text: pct(d.previous_probability) }),
          node("td", { class: "num", text: d.rank == null ? "–" : `#${d.rank}` }),
          node("td", { class: "num", text: pct(d.churn_probability) }),
          node("td", { text: d.why }),
        ),
      );
    }
  }

  /* ---------- a customer's detail -------------------------------------------------------- */
  const BEHIND_SHOWN = 3; // contacts listed under a reason; the table below has them all
  let detailController = null;
  let detailOpener = null;

  async function openDetail(customerId, opener) {
    if (!current) return;
    if (detailController) detailController.abort();
    detailController = new AbortController();
    detailOpener = opener || null;
    const q = new URLSearchParams({ id: customerId, date: current.date });
    el.detail.hidden = false;
    el.detail.dataset.state = "loading";
    el.detail.dataset.customerId = customerId;
    el.detail.dataset.date = current.date;
    el.detailTitle.textContent = `Customer ${customerId}`;
    el.detailError.hidden = true;
    el.detailBody.hidden = true;
    el.detail.focus();
    try {
      const response = await call("/risk-list/customer?" + q.toString(), detailController.signal);
      const detail = await response.json();
      if (el.detail.dataset.customerId !== customerId) return;
      renderDetail(detail);
      el.detailBody.hidden = false;
      el.detail.dataset.state = "ready";
    } catch (e) {
      if (e.name === "AbortError") return;
      if (e.status === 401 || e.status === 403) {
        closeDetail();
        setKey("");
        askForKey(explain(e));
        return;
      }
      el.detailError.textContent =
        e.status === 404 ? e.message : "Could not open the customer. " + explain(e);
      el.detailError.hidden = false;
      el.detail.dataset.state = "error";
    }
  }

  function closeDetail() {
    if (detailController) detailController.abort();
    el.detail.hidden = true;
    el.detail.dataset.state = "closed";
    delete el.detail.dataset.customerId;
    if (detailOpener && document.contains(detailOpener)) detailOpener.focus();
    detailOpener = null;
  }

  function renderDetail(d) {
    const row = d.row;
    const t = d.band_thresholds || {};
    el.detailTitle.replaceChildren(
      node("span", { class: "detail-id", text: `Customer ${d.customer_id}` }),
      " ",
      bandBadge(row.risk_band),
    );
    el.detailProb.textContent = probabilityText(row.churn_probability, row.risk_band, t);
    el.detailRank.textContent =
      `#${row.rank}` + (row.on_list ? " (on the list)" : " (not on the list)");
    el.detailProfile.textContent = `${row.segment || "–"} · ${row.plan || "–"}`;
    el.detailFresh.textContent = d.data_through
      ? `${d.data_through}` +
        (d.data_stale ? ` ⚠ ${days(d.data_lag_days)} before the list's day` : "") +
        ` (list of ${d.date})`
      : `not recorded (list of ${d.date})`;
    el.detailFresh.dataset.stale = d.data_stale ? "true" : "false";
    el.detailAction.textContent = d.action;
    renderCurve(row);
    renderDetailReasons(d);
    renderHistory(d, t);
    renderContacts(d);
    renderCases(d);
    renderRetention(d);
  }

  /* The churn curve of a model trained with --horizons: P(churn within H) at each trained
     horizon, drawn as an inline SVG (no network, no library). */
  const SVG = "http://www.w3.org/2000/svg";

  function svgNode(tag, attrs, text) {
    const n = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
    if (text != null) n.textContent = text;
    return n;
  }

  function renderCurve(row) {
    const curve = row.horizons;
    const points = curve
      ? Object.entries(curve)
          .map(([h, p]) => [Number(h), Number(p)])
          .filter(([h, p]) => Number.isFinite(h) && Number.isFinite(p))
          .sort((a, b) => a[0] - b[0])
      : [];
    el.detailCurve.hidden = points.length === 0;
    el.detailCurveChart.replaceChildren();
    if (!points.length) {
      el.detailCurveText.textContent = "";
      return;
    }
    const within = row.likely_within_days;
    el.detailCurveText.textContent =
      points.map(([h, p]) => `within ${h} days ${pct(p)}`).join(" · ") +
      (within != null ? `. If they leave, most likely within ${within} days.` : ".");
    const [left, right, top, bottom] = [36, 310, 10, 104];
    const longest = points[points.length - 1][0];
    const highest = Math.max(0.01, ...points.map(([, p]) => p));
    const x = (h) => left + ((right - left) * h) / longest;
    const y = (p) => bottom - ((bottom - top) * p) / highest;
    const chart = el.detailCurveChart;
    chart.append(svgNode("line", { x1: left, y1: bottom, x2: right, y2: bottom, class: "axis" }));
    chart.append(svgNode("line", { x1: left, y1: top, x2: left, y2: bottom, class: "axis" }));
    chart.append(svgNode("text", { x: left - 4, y: top + 4, class: "tick end" }, pct(highest, 0)));
    chart.append(svgNode("text", { x: left - 4, y: bottom, class: "tick end" }, "0%"));
    let path = `M ${x(0)} ${y(0)}`;
    for (const [h, p] of points) path += ` L ${x(h)} ${y(p)}`;
    chart.append(svgNode("path", { d: path, class: "curve-line" }));
    for (const [h, p] of points) {
      const dot = svgNode("circle", {
        cx: x(h),
        cy: y(p),
        r: h === within ? 5 : 3.5,
        class: h === within ? "curve-dot within" : "curve-dot",
        "data-horizon": h,
      });
      dot.append(svgNode("title", {}, `within ${h} days: ${pct(p)}`));
      chart.append(dot);
      chart.append(svgNode("text", { x: x(h), y: bottom + 14, class: "tick middle" }, `${h}d`));
    }
  }

  const SIGN_LABEL = {
    long_wait: "long wait",
    abandoned: "gave up waiting",
    repeat: "came back",
    transferred: "transferred",
    low_csat: "low rating",
  };

  function contactLine(c) {
    const day = c.started_at.slice(0, 10);
    const signs = Object.keys(SIGN_LABEL).filter((k) => c[k]).map((k) => SIGN_LABEL[k]);
    const parts = [`${day} ${c.channel || "contact"}`];
    if (c.topic) parts.push(c.topic);
    if (c.wait_seconds != null) parts.push(`waited ${duration(c.wait_seconds)}`);
    if (signs.length) parts.push(signs.join(", "));
    return parts.join(" · ");
  }

  function caseLine(c) {
    return (
      `case ${c.case_id}` +
      (c.topic ? ` (${c.topic})` : "") +
      (c.open
        ? `: open for ${days(c.age_days)}, ${c.status}, ` +
          `${c.contacts} ${c.contacts === 1 ? "contact" : "contacts"}`
        : `: ${c.status || "closed"}, ${c.contacts} ${c.contacts === 1 ? "contact" : "contacts"}`)
    );
  }

  function renderDetailReasons(d) {
    const contacts = new Map(d.contacts.map((c) => [c.interaction_id, c]));
    const cases = new Map(d.cases.map((c) => [c.case_id, c]));
    el.detailReasons.replaceChildren(
      ...d.reasons.map((r) => {
        const li = node("li", { "data-code": r.code, "data-kind": r.kind });
        li.append(node("span", { class: "reason-text", text: r.text }));
        if (r.kind === "context") li.append(node("span", { class: "tag context", text: "context" }));
        const lines = [];
        for (const id of r.cases) if (cases.has(id)) lines.push(caseLine(cases.get(id)));
        for (const id of r.contacts.slice(0, BEHIND_SHOWN)) {
          if (contacts.has(id)) lines.push(contactLine(contacts.get(id)));
        }
        const more = r.contacts.length - BEHIND_SHOWN;
        if (more > 0) lines.push(`and ${more} more ${more === 1 ? "contact" : "contacts"} below`);
        if (lines.length) {
          li.append(node("ul", { class: "behind" }, ...lines.map((x) => node("li", { text: x }))));
        }
        return li;
      }),
    );
    el.detailNote.hidden = !d.evidence_note;
    el.detailNote.textContent = d.evidence_note || "";
  }

  function renderHistory(d, t) {
    const max = Math.max(0.01, ...d.history.map((h) => h.churn_probability));
    el.detailHistory.replaceChildren(
      ...d.history.map((h) => {
        const width = Math.max(1, Math.round((h.churn_probability / max) * 100));
        const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
        svg.setAttribute("viewBox", "0 0 100 10");
        svg.setAttribute("preserveAspectRatio", "none");
        svg.setAttribute("class", "bar");
        svg.setAttribute("aria-hidden", "true");
        const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
        rect.setAttribute("width", String(width));
        rect.setAttribute("height", "10");
        rect.setAttribute("class", `bar-${h.risk_band}`);
        svg.append(rect);
        return node(
          "tr",
          { "data-date": h.list_date },
          node("th", { scope: "row", text: h.list_date }),
          node("td", {
            class: "num",
            text: probabilityText(h.churn_probability, h.risk_band, t),
          }),
          node("td", {}, bandBadge(h.risk_band)),
          node("td", { class: "num", text: `#${h.rank}` }),
          node("td", { class: "bar-col" }, svg),
        );
      }),
    );
  }

  function renderContacts(d) {
    el.detailContactsTitle.textContent =
      d.contacts_in_window == null
        ? "Recent contacts"
        : `Recent contacts (${d.contacts.length} of ${d.contacts_in_window} in the last ` +
          `${d.window_days} days)`;
    if (!d.contacts.length) {
      const text = d.evidence_kept ? `No contacts in the last ${d.window_days} days.` : "Not kept.";
      el.detailContacts.replaceChildren(
        node("tr", { class: "empty" }, node("td", { colspan: 9, text })),
      );
      return;
    }
    el.detailContacts.replaceChildren(
      ...d.contacts.map((c) => {
        const signs = node("td", { class: "signs" });
        for (const [k, label] of Object.entries(SIGN_LABEL)) {
          if (c[k]) signs.append(node("span", { class: `tag sign sign-${k}`, text: label }));
        }
        return node(
          "tr",
          { "data-interaction-id": c.interaction_id || "" },
          node("td", { class: "nowrap", text: c.started_at.slice(0, 16).replace("T", " ") }),
          node("td", { text: c.channel || "–" }),
          node("td", { text: c.topic || "–" }),
          node("td", { class: "id-cell", text: c.case_id || "–" }),
          node("td", { class: "num", text: duration(c.wait_seconds) }),
          node("td", { class: "num", text: c.transfers == null ? "–" : c.transfers }),
          node("td", { text: c.status || "–" }),
          node("td", { class: "num", text: c.csat == null ? "–" : `${c.csat} / 5` }),
          signs,
        );
      }),
    );
  }

  function renderCases(d) {
    if (!d.cases.length) {
      el.detailCases.replaceChildren(
        node("tr", { class: "empty" }, node("td", { colspan: 7, text: "No cases." })),
      );
      return;
    }
    el.detailCases.replaceChildren(
      ...d.cases.map((c) =>
        node(
          "tr",
          { "data-case-id": c.case_id, "data-open": c.open ? "true" : "false" },
          node("td", { class: "id-cell", text: c.case_id }),
          node("td", { text: c.topic || "–" }),
          node("td", { text: c.first_contact }),
          node("td", { text: c.last_contact }),
          node("td", { class: "num", text: c.contacts }),
          node("td", {}, node("span", { class: c.open ? "tag open" : "tag", text: c.status || "–" })),
          node("td", { class: "num", text: c.open ? days(c.age_days) : "closed" }),
        ),
      ),
    );
  }

  function renderRetention(d) {
    el.retentionList.replaceChildren(
      ...d.retention_contacts.map((r) =>
        node(
          "li",
          {},
          `${r.contacted_at}: ${r.group || "treated"}` +
            (r.outcome ? `, ${r.outcome.replace("_", " ")}` : "") +
            (r.channel ? ` (${r.channel})` : ""),
        ),
      ),
    );
    el.retentionEmpty.hidden = d.retention_contacts.length > 0;
    el.retentionEmpty.textContent = !d.retention_contacts_recorded
      ? "None recorded yet: no retention contacts are stored (churnml retention-contacts --import, or POST /retention-contacts)."
      : "None recorded for this customer.";
  }

  el.tbody.addEventListener("click", (event) => {
    const tr = event.target.closest("tr[data-customer-id]");
    if (!tr) return;
    const button = tr.querySelector("button.open-detail");
    openDetail(tr.dataset.customerId, button);
  });
  el.detailClose.addEventListener("click", closeDetail);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !el.detail.hidden) closeDetail();
  });

  /* ---------- wiring -------------------------------------------------------------------- */
  function change(mutate) {
    mutate();
    state.offset = 0;
    load();
  }

  el.keyForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = el.key.value.trim();
    if (!value) {
      showError("Enter the API key first.");
      return;
    }
    setKey(value);
    el.key.value = "";
    clearError();
    load();
  });

  el.forget.addEventListener("click", () => {
    setKey("");
    current = null;
    el.tbody.replaceChildren();
    clearError();
    askForKey();
    el.status.textContent = "";
  });

  el.filters.addEventListener("submit", (event) => event.preventDefault());
  el.date.addEventListener("change", () => change(() => (state.date = el.date.value)));
  el.scope.addEventListener("change", () => change(() => (state.scope = el.scope.value)));
  el.band.addEventListener("change", () => change(() => (state.band = el.band.value)));
  el.segment.addEventListener("change", () => change(() => (state.segment = el.segment.value)));
  el.pageSize.addEventListener("change", () =>
    change(() => (state.limit = parseInt(el.pageSize.value, 10) || DEFAULT_LIMIT)),
  );

  let searchTimer = 0;
  el.search.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => {
      const value = el.search.value.trim();
      if (value !== state.customer) change(() => (state.customer = value));
    }, SEARCH_DELAY_MS);
  });
  el.search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      clearTimeout(searchTimer);
      change(() => (state.customer = el.search.value.trim()));
    }
  });

  el.reset.addEventListener("click", () =>
    change(() => {
      Object.assign(state, { band: "", segment: "", customer: "", scope: "list" });
      syncControls();
    }),
  );

  el.prev.addEventListener("click", () => {
    state.offset = Math.max(0, state.offset - state.limit);
    load();
  });
  el.next.addEventListener("click", () => {
    if (current && state.offset + state.limit < current.total) {
      state.offset += state.limit;
      load();
    }
  });

  for (const th of el.headers) {
    // The arrow stays with the label's last word when the heading wraps.
    const words = th.textContent.trim().split(/\s+/);
    const last = words.pop();
    const button = node(
      "button",
      { type: "button", class: "sort" },
      words.length ? words.join(" ") + " " : null,
      node("span", { class: "nowrap" }, last, node("span", { class: "arrow", "aria-hidden": "true" })),
    );
    th.replaceChildren(button);
    button.addEventListener("click", () => {
      const keyName = th.dataset.sort;
      if (sort.key === keyName) {
        sort.dir = sort.dir === "ascending" ? "descending" : "ascending";
      } else {
        sort.key = keyName;
        // Rank, customer, segment, plan read best A→Z; scores read best high→low.
        sort.dir = ["rank", "customer_id", "segment", "plan"].includes(keyName)
          ? "ascending"
          : "descending";
      }
      if (current) renderRows(current);
    });
  }

  el.download.addEventListener("click", downloadCsv);

  readAddress();
  syncControls();
  if (key()) {
    keyAccepted();
    load();
  } else {
    askForKey();
  }
})();
