/* Variants and a trait (/association): plain JavaScript, no library, nothing from outside the app.
 *
 * The form names a genotypes dataset and a stored trait table (GET /api/v1/association/genotypes
 * and /traits, given in the page data; a CSV/TSV can be uploaded with POST /traits), the trait,
 * the covariates, the method (a classical test or the forest) and the assembly. "Run" POSTs
 * /analyses, follows the job (GET /analyses/{id}) with a progress bar, then shows the summary,
 * the Manhattan and QQ plots (/plots/…) and the top hits (/hits, 20 at a time) with links to the
 * Beacon and the UCSC Genome Browser. The URL becomes /association?job=ID, so a reload (or a
 * shared link) shows the result again.
 * #as-results says data-ready="1" when drawn (the browser tests read it).
 */
(function () {
  "use strict";

  const $ = (sel) => document.querySelector(sel);
  const API = "/api/v1/association";
  const PAGE = 20;
  const POLL_MS = 400;
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  const state = { data: {}, tables: [], job: null, offset: 0, total: 0, method: "test", polling: 0 };

  async function send(url, body) {
    const r = await fetch(url, body === undefined ? { headers: { Accept: "application/json" } } : {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    const doc = await r.json().catch(() => ({}));
    if (!r.ok) {
      const err = new Error(doc.detail || `${r.status} ${r.statusText}`);
      err.status = r.status;
      throw err;
    }
    return doc;
  }

  function fail(message) {
    const box = $("#as-error");
    box.textContent = message;
    box.hidden = false;
    $("#as-status").textContent = "";
  }

  function option(value, text, selected) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    if (selected) o.selected = true;
    return o;
  }

  // -- the form -----------------------------------------------------------------------------------

  function init() {
    state.data = JSON.parse($("#page-data").textContent || "{}");
    state.tables = state.data.traits || [];
    const ex = state.data.example || {};
    const geno = $("#as-genotypes");
    for (const g of state.data.genotypes || []) {
      const size = g.variants != null && g.samples != null ? ` — ${g.variants.toLocaleString("en")} variants × ${g.samples.toLocaleString("en")} samples` : "";
      geno.append(option(g.name, g.name + size, g.name === ex.genotypes));
    }
    const asm = $("#as-assembly");
    asm.append(option("", "unknown (no genome browser links)"));
    for (const a of state.data.assemblies || []) {
      asm.append(option(a.name, a.ucsc ? `${a.name} (UCSC ${a.ucsc})` : a.name));
    }
    fillTables(ex.traits);
    if (ex.trait) { $("#as-trait").value = ex.trait; traitChanged(); }
    if (ex.test) $("#as-test").value = ex.test;
    if (ex.statistic) $("#as-statistic").value = ex.statistic;
    for (const c of ex.covariates || []) {
      const box = document.querySelector(`#as-covariates input[value="${CSS.escape(c)}"]`);
      if (box && !box.disabled) box.checked = true;
    }
    genotypesChanged(ex.assembly);
    geno.addEventListener("change", () => genotypesChanged());
    $("#as-traits").addEventListener("change", () => fillColumns());
    $("#as-trait").addEventListener("change", traitChanged);
    $("#as-test").addEventListener("change", testChanged);
    for (const r of document.querySelectorAll("input[name=as-method]")) {
      r.addEventListener("change", methodChanged);
    }
    $("#as-upload").addEventListener("change", upload);
    $("#as-form").addEventListener("submit", (e) => { e.preventDefault(); run(); });
    $("#as-more").addEventListener("click", () => more());
    testChanged();
    const job = new URLSearchParams(location.search).get("job");
    if (job) follow(job);
  }

  function genotypesChanged(assembly) {
    const g = (state.data.genotypes || []).find((d) => d.name === $("#as-genotypes").value);
    const chosen = assembly || (g && g.assembly) || "";
    const asm = $("#as-assembly");
    if ([...asm.options].some((o) => o.value === chosen)) asm.value = chosen;
  }

  function fillTables(chosen) {
    const sel = $("#as-traits");
    const keep = chosen || sel.value;
    sel.replaceChildren();
    for (const t of state.tables) {
      sel.append(option(t.name, `${t.name} — ${(t.samples || 0).toLocaleString("en")} samples`, t.name === keep));
    }
    fillColumns();
  }

  function numericColumns() {
    const t = state.tables.find((d) => d.name === $("#as-traits").value);
    return t ? t.columns.filter((c) => c.kind !== "text") : [];
  }

  function fillColumns() {
    const cols = numericColumns();
    const trait = $("#as-trait");
    const keep = trait.value;
    trait.replaceChildren();
    for (const c of cols) trait.append(option(c.name, `${c.name} (${c.kind === "binary" ? "0/1" : "quantitative"})`, c.name === keep));
    const box = $("#as-covariates");
    box.replaceChildren();
    for (const c of cols) {
      const label = document.createElement("label");
      label.innerHTML = `<input type="checkbox" value="${esc(c.name)}"> ${esc(c.name)}`;
      box.append(label);
    }
    traitChanged();
  }

  function traitChanged() {
    const name = $("#as-trait").value;
    const col = numericColumns().find((c) => c.name === name);
    for (const input of document.querySelectorAll("#as-covariates input")) {
      input.disabled = input.value === name;
      if (input.disabled) input.checked = false;
    }
    if (col) $("#as-test").value = col.kind === "binary" ? "logistic" : "linear";
    testChanged();
  }

  function testChanged() {
    const test = $("#as-test").value;
    const st = $("#as-statistic");
    const regression = test === "logistic" || test === "firth";
    st.disabled = !regression;
    if (!regression) st.value = "wald";
    st.querySelector("option[value=score]").disabled = test !== "logistic";
    if (test === "firth" && st.value === "score") st.value = "wald";
    const noCov = test === "fisher" || test === "trend";
    for (const input of document.querySelectorAll("#as-covariates input")) {
      if (input.value === $("#as-trait").value) continue;
      input.disabled = noCov && state.method === "test";
      if (input.disabled) input.checked = false;
    }
  }

  function methodChanged() {
    state.method = document.querySelector("input[name=as-method]:checked").value;
    $(".as-test-fields").hidden = state.method !== "test";
    $(".as-forest-fields").hidden = state.method !== "forest";
    testChanged();
  }

  async function upload() {
    const file = $("#as-upload").files[0];
    if (!file) return;
    const status = $("#as-upload-status");
    $("#as-error").hidden = true;
    if (file.size > (state.data.max_table_bytes || Infinity)) {
      return fail(`${file.name} is larger than ${state.data.max_table_bytes.toLocaleString("en")} bytes.`);
    }
    status.textContent = `Storing ${file.name}…`;
    const base = (file.name.replace(/\.(csv|tsv|txt)$/i, "").replace(/[^A-Za-z0-9._-]+/g, "-")
      .replace(/^[^A-Za-z0-9]+/, "") || "traits").slice(0, 100);
    const text = await file.text();
    for (let k = 1; k <= 20; k++) {
      const name = k === 1 ? base : `${base}-${k}`;
      try {
        const table = await send(`${API}/traits`, { name, text });
        state.tables = state.tables.filter((t) => t.name !== name).concat([table]);
        fillTables(name);
        status.textContent = `Stored as "${name}": ${table.samples.toLocaleString("en")} samples, ${table.columns.length} columns.`;
        return;
      } catch (err) {
        if (err.status !== 409) { status.textContent = ""; return fail(`${file.name}: ${err.message}`); }
      }
    }
    status.textContent = "";
    fail(`${file.name}: too many tables of that name; rename the file.`);
  }

  function request() {
    const body = {
      genotypes: $("#as-genotypes").value,
      traits: $("#as-traits").value,
      trait: $("#as-trait").value,
      method: state.method,
      covariates: [...document.querySelectorAll("#as-covariates input:checked")].map((i) => i.value),
    };
    const assembly = $("#as-assembly").value;
    if (assembly) body.assembly = assembly;
    if (state.method === "test") {
      body.test = $("#as-test").value;
      body.statistic = $("#as-statistic").value;
    } else {
      body.trees = Number($("#as-trees").value);
      body.seed = Number($("#as-seed").value);
    }
    return body;
  }

  async function run() {
    $("#as-error").hidden = true;
    if (!$("#as-genotypes").value) return fail("There are no genotypes to analyse: import a VCF first.");
    if (!$("#as-traits").value) return fail("Choose a trait table, or upload one.");
    if (!$("#as-trait").value) return fail("The trait table has no numeric column to test.");
    $("#as-go").disabled = true;
    try {
      const started = await send(`${API}/analyses`, request());
      history.replaceState(null, "", started.page_url);
      await follow(started.id);
    } catch (err) {
      fail(`The analysis could not start: ${err.message}`);
      $("#as-go").disabled = false;
    }
  }

  // -- the job --------------------------------------------------------------------------------------

  function progress(fraction, kind) {
    const row = $("#as-progress-row");
    row.hidden = false;
    const bar = $("#as-progress");
    bar.classList.toggle("done", kind === "done");
    bar.classList.toggle("failed", kind === "failed");
    bar.querySelector(".progress-bar").style.width = `${Math.round(fraction * 100)}%`;
    bar.setAttribute("aria-valuenow", String(Math.round(fraction * 100)));
  }

  async function follow(id) {
    const ticket = ++state.polling;
    $("#as-go").disabled = true;
    delete $("#as-results").dataset.ready;
    $("#as-results").hidden = true;
    for (;;) {
      if (ticket !== state.polling) return;
      let job;
      try {
        job = await send(`${API}/analyses/${encodeURIComponent(id)}`);
      } catch (err) {
        $("#as-go").disabled = false;
        return fail(`Analysis ${id}: ${err.message}`);
      }
      if (job.status === "done") {
        progress(1, "done");
        $("#as-status").textContent = "Done.";
        $("#as-go").disabled = false;
        return show(job);
      }
      if (job.status === "failed" || job.status === "cancelled") {
        progress(job.progress || 0, "failed");
        $("#as-go").disabled = false;
        return fail(`The analysis ${job.status === "failed" ? "failed" : "was cancelled"}: ${job.error || ""}`);
      }
      progress(job.progress || 0);
      $("#as-status").textContent = job.status === "queued" ? "Queued…" : `${job.message || "Running"}… ${Math.round((job.progress || 0) * 100)} %`;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  // -- the result ---------------------------------------------------------------------------------

  const fmtP = (p) => (p == null ? "NA" : p === 0 ? "0" : p < 1e-3 ? p.toExponential(2) : p.toPrecision(3));
  const fmt = (x, digits = 3) => (x == null ? "NA" : Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(2) : x.toPrecision(digits));

  function show(job) {
    const a = job.analysis;
    state.job = job;
    state.offset = 0;
    const p = a.parameters;
    const s = a.summary;
    const what = a.method === "forest"
      ? `Random forest of ${p.trees} trees (${s.mode}; OOB ${s.oob_error_kind} ${fmt(s.oob_error)})`
      : `${p.test} test${["logistic", "firth"].includes(p.test) ? ` (${p.statistic})` : ""}`;
    const cov = p.covariates.length ? `, covariates ${p.covariates.join(", ")}` : "";
    $("#as-summary").innerHTML = `${esc(what)} of <strong>${esc(p.trait)}</strong> on
      <strong>${esc(p.genotypes)}</strong>${esc(cov)}: ${s.samples.toLocaleString("en")} samples
      (${s.dropped_samples} without the trait or a covariate), ${s.tested.toLocaleString("en")} of
      ${s.variants.toLocaleString("en")} variants tested, smallest p ${fmtP(s.min_p)},
      λ<sub>GC</sub> = <span id="as-lambda">${s.lambda_gc == null ? "NA" : s.lambda_gc.toFixed(3)}</span>;
      assembly ${esc(a.assembly || "unknown")}.`;
    $("#as-table-link").href = a.table_url;
    for (const kind of ["manhattan", "qq"]) {
      const img = $(`#as-${kind}`);
      const png = a.plots[`${kind}.png`];
      img.hidden = !png;
      if (png) img.src = png;
      $(`#as-${kind}-svg`).href = a.plots[`${kind}.svg`] || "#";
      $(`#as-${kind}-png`).href = png || "#";
    }
    const head = a.method === "forest"
      ? ["Rank", "Variant", "ID", "AIR", "Gini", "Splits", "p", "q", "Look up"]
      : ["Rank", "Variant", "ID", "β", "SE", "p", "AF", "N", "Look up"];
    $("#as-hits thead").innerHTML = `<tr>${head.map((h, i) => `<th${i > 2 && i < 8 ? ' class="num"' : ""}>${h}</th>`).join("")}</tr>`;
    $("#as-hits tbody").replaceChildren();
    $("#as-results").hidden = false;
    more().then(() => { $("#as-results").dataset.ready = "1"; });
  }

  function row(h, forest) {
    const variant = `${h.chrom}:${h.pos.toLocaleString("en")} ${h.ref}>${h.alt}`;
    const cells = forest
      ? [fmt(h.air), fmt(h.importance), h.split_count, fmtP(h.p), fmtP(h.q_value)]
      : [fmt(h.beta), fmt(h.se), fmtP(h.p), h.af == null ? "NA" : h.af.toFixed(3), h.n];
    const links = [];
    if (h.links.beacon) links.push(`<a class="beacon" href="${esc(h.links.beacon)}" target="_blank" rel="noopener">Beacon</a>`);
    if (h.links.ucsc) links.push(`<a class="ucsc" href="${esc(h.links.ucsc)}" target="_blank" rel="noopener noreferrer">UCSC</a>`);
    const tr = document.createElement("tr");
    tr.dataset.rank = h.rank;
    tr.innerHTML = `<td class="num">${h.rank}</td><td class="variant">${esc(variant)}</td>
      <td class="id">${esc(h.id === "." ? "" : h.id)}</td>
      ${cells.map((c) => `<td class="num">${esc(c)}</td>`).join("")}
      <td class="links">${links.join(" ") || '<span class="muted">—</span>'}</td>`;
    return tr;
  }

  async function more() {
    const job = state.job;
    if (!job) return;
    const a = job.analysis;
    const more = $("#as-more");
    more.disabled = true;
    try {
      const page = await send(`${a.hits_url}?offset=${state.offset}&limit=${PAGE}`);
      const body = $("#as-hits tbody");
      for (const h of page.hits) body.append(row(h, a.method === "forest"));
      state.offset += page.hits.length;
      state.total = page.total;
      $("#as-hits-count").textContent = `(${state.offset.toLocaleString("en")} of ${page.total.toLocaleString("en")} variants, by ${a.method === "forest" ? "AIR" : "p"})`;
      more.hidden = state.offset >= page.total;
    } catch (err) {
      fail(`The hits could not be read: ${err.message}`);
    } finally {
      more.disabled = false;
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
