/* Trace a new sample (/strains/trace): plain JavaScript, no library, nothing from outside the app.
 *
 * One submit asks POST /api/v1/strains/nearest for the k nearest strains of the pasted, uploaded
 * or typed sample, then, each on its own (one failing does not stop the others):
 * POST /project + GET /{c}/map to draw the sample on the first chosen collection's k-mer map,
 * POST /place for its local tree on the first chosen collection that has a tree, and
 * POST /profile for the genomes that carry its mutations, drawn as bar charts (SVG).
 * The canvas says how many genomes it drew in data-drawn and where the sample is in data-query;
 * every section says data-ready="1" when done (the browser tests read them).
 */
(function () {
  "use strict";

  const $ = (sel) => document.querySelector(sel);
  const API = "/api/v1/strains";
  const SUBSTITUTION = /^([ACGT])(\d+)([ACGT])$/;
  const MAX_BARS = 12;
  const SHOWN_MUTATIONS = 12;
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

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

  const state = { data: {}, collections: [], query: null, answers: [], which: 0, maps: new Map(),
    projected: null, placed: null, mapName: null };

  function init() {
    state.data = JSON.parse($("#page-data").textContent || "{}");
    if (!state.data.collection || !$("#trace-form")) return;
    state.info = new Map((state.data.collections || []).map((c) => [c.collection, c]));
    $("#trace-form").addEventListener("submit", (e) => { e.preventDefault(); trace(); });
    $("#trace-file").addEventListener("change", readFile);
    $("#trace-which").addEventListener("change", (e) => { state.which = Number(e.target.value); show(); });
    $("#trace-profile-form").addEventListener("submit", (e) => {
      e.preventDefault();
      profile($("#trace-expression").value);
    });
  }

  function readFile(e) {
    const file = e.target.files && e.target.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => { $("#trace-fasta").value = String(reader.result || ""); $("#trace-mutations").value = ""; };
    reader.onerror = () => fail("the file could not be read");
    reader.readAsText(file);
  }

  function fail(message) {
    const box = $("#trace-error");
    box.textContent = message;
    box.hidden = false;
    $("#trace-status").textContent = "";
  }

  // -- the search ---------------------------------------------------------------------------------

  async function trace() {
    $("#trace-error").hidden = true;
    const fasta = $("#trace-fasta").value.trim();
    const mutations = $("#trace-mutations").value.trim();
    const collections = [...document.querySelectorAll("#trace-collections input:checked")].map((i) => i.value);
    const k = Number($("#trace-k").value);
    if (!fasta && !mutations) return fail("Paste a genome (FASTA), upload one, or type its mutations.");
    if (!collections.length) return fail("Choose at least one collection.");
    if (!Number.isInteger(k) || k < 1 || k > 1000) return fail("k is a whole number from 1 to 1,000.");
    state.query = fasta ? { fasta: fasta + "\n" } : { mutations };
    state.collections = collections;
    $("#trace-status").textContent = "Searching…";
    $("#trace-go").disabled = true;
    let near;
    try {
      near = await send(`${API}/nearest`, { collections, ...state.query, k });
    } catch (err) {
      $("#trace-go").disabled = false;
      return fail(err.message);
    }
    $("#trace-go").disabled = false;
    $("#trace-status").textContent = "";
    state.answers = near.answers;
    state.which = 0;
    state.projected = null;
    state.placed = null;
    const which = $("#trace-which");
    which.innerHTML = state.answers.map((a, i) => `<option value="${i}">${esc(a.query)}</option>`).join("");
    $("#trace-which-label").hidden = state.answers.length < 2;
    $("#trace-results").hidden = false;
    for (const id of ["#trace-map", "#trace-tree", "#trace-profile-month"]) delete $(id).dataset.ready;
    show();
    const mapColl = collections.find((c) => (state.info.get(c) || {}).has_map);
    const treeColl = collections.find((c) => (state.info.get(c) || {}).has_tree);
    await Promise.all([projectOn(mapColl), placeOn(treeColl), profile(defaultExpression(state.answers[0]))]);
  }

  function show() {
    table(state.answers[state.which]);
    drawMap();
    drawTree();
  }

  function muts(list, cls) {
    if (!list.length) return "";
    const shown = list.slice(0, SHOWN_MUTATIONS).map((m) => `<span class="${cls}">${esc(m)}</span>`).join(" ");
    const more = list.length > SHOWN_MUTATIONS ? ` <span class="muted" title="${esc(list.join(", "))}">+${list.length - SHOWN_MUTATIONS} more</span>` : "";
    return shown + more;
  }

  function table(answer) {
    $("#trace-query").textContent = `· ${answer.query}`;
    const rows = answer.neighbours.map((n, i) => `<tr>
      <td>${i + 1}</td><td class="strain">${esc(n.strain)}</td><td class="num">${n.distance}</td>
      <td class="num">${Number(n.covered).toLocaleString("en")}</td><td>${esc(n.date)}</td>
      <td>${esc(n.country)}</td><td>${esc(n.collection)}</td>
      <td class="diffs">${muts(n.query_only, "q-only")} ${muts(n.strain_only, "s-only")}${n.query_only.length + n.strain_only.length === 0 ? '<span class="muted">none</span>' : ""} <span class="muted">· ${n.shared.length} shared</span></td></tr>`);
    $("#trace-table tbody").innerHTML = rows.join("") ||
      '<tr><td colspan="8" class="muted">No genome within reach in the collections you may see.</td></tr>';
    $("#trace-summary").textContent = `${answer.query_mutations} mutations in the sample, ` +
      `${Number(answer.query_covered).toLocaleString("en")} bases covered; ` +
      `${Number(answer.searched).toLocaleString("en")} genomes searched` +
      (answer.ties_at_k > 1 ? `; ${answer.ties_at_k} genomes tie at the k-th distance` : "") + ".";
    $("#trace-counts").textContent = (answer.counts_only || []).map((c) =>
      `${c.collection}: counts only — genomes at distance 0, 1, 2, …: ${c.genomes_by_distance.join(", ")}`).join("; ");
  }

  // -- the map --------------------------------------------------------------------------------------

  async function mapPoints(name) {
    if (state.maps.has(name)) return state.maps.get(name);
    const cols = { strain: [], x: [], y: [] };
    let offset = 0;
    let bounds = null;
    while (offset !== null) {
      const page = await send(`${API}/${encodeURIComponent(name)}/map?offset=${offset}`);
      bounds = page.bounds;
      for (const key of ["strain", "x", "y"]) cols[key].push(...page.columns[key]);
      offset = page.next_offset;
    }
    const points = { ...cols, bounds };
    state.maps.set(name, points);
    return points;
  }

  async function projectOn(name) {
    const note = $("#trace-map-note");
    const canvas = $("#trace-map");
    state.mapName = name;
    $("#trace-map-name").textContent = name ? `· ${name}` : "";
    if (!name) {
      note.innerHTML = "None of the chosen collections has a k-mer map yet: build one with " +
        `<code>sandgrain strains map --collection ${esc(state.collections[0])}</code>.`;
      canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
      canvas.dataset.ready = "1";
      return;
    }
    try {
      const [points, projected] = await Promise.all([
        mapPoints(name), send(`${API}/project`, { collection: name, ...state.query })]);
      state.projected = { points, projected };
      drawMap();
    } catch (err) {
      note.textContent = `The map could not be drawn: ${err.message}`;
    }
    canvas.dataset.ready = "1";
  }

  function drawMap() {
    const canvas = $("#trace-map");
    if (!state.projected) return;
    const { points, projected } = state.projected;
    const q = projected.queries[Math.min(state.which, projected.queries.length - 1)];
    const answer = state.answers[state.which];
    const near = new Map(answer.neighbours.filter((n) => n.collection === state.mapName).map((n, i) => [n.strain, i]));
    const ctx = canvas.getContext("2d");
    const W = canvas.width;
    const H = canvas.height;
    const pad = 16;
    let [x0, x1] = points.bounds.x;
    let [y0, y1] = points.bounds.y;
    x0 = Math.min(x0, q.x); x1 = Math.max(x1, q.x); y0 = Math.min(y0, q.y); y1 = Math.max(y1, q.y);
    const sx = (x) => pad + ((x - x0) / ((x1 - x0) || 1)) * (W - 2 * pad);
    const sy = (y) => H - pad - ((y - y0) / ((y1 - y0) || 1)) * (H - 2 * pad);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, H);
    ctx.fillStyle = "#9aa0a8";
    let drawn = 0;
    const ringed = [];
    for (let i = 0; i < points.strain.length; i++) {
      if (points.x[i] === null || points.y[i] === null) continue;
      ctx.fillRect(sx(points.x[i]) - 1.5, sy(points.y[i]) - 1.5, 3, 3);
      drawn++;
      if (near.has(points.strain[i])) ringed.push(i);
    }
    ctx.strokeStyle = "#ff7f0e";
    ctx.lineWidth = 2;
    for (const i of ringed) {
      ctx.beginPath();
      ctx.arc(sx(points.x[i]), sy(points.y[i]), 5, 0, 2 * Math.PI);
      ctx.stroke();
    }
    const qx = sx(q.x);
    const qy = sy(q.y);
    ctx.strokeStyle = "#c0392b";
    ctx.lineWidth = 3;
    ctx.beginPath();
    ctx.moveTo(qx - 8, qy - 8); ctx.lineTo(qx + 8, qy + 8);
    ctx.moveTo(qx + 8, qy - 8); ctx.lineTo(qx - 8, qy + 8);
    ctx.stroke();
    canvas.dataset.drawn = String(drawn);
    canvas.dataset.query = `${Math.round(qx)},${Math.round(qy)}`;
    canvas.dataset.ringed = String(ringed.length);
    const axes = projected.axes.slice(0, 2).map((a) => `${a.name} ${(100 * a.explained_variance_ratio).toFixed(1)} %`);
    $("#trace-map-note").innerHTML = `<span class="key-q">✕</span> ${esc(q.query)} (projected; the map does not move) · ` +
      `<span class="key-n">○</span> its ${ringed.length} nearest strains here · ${drawn.toLocaleString("en")} genomes · ${esc(axes.join(", "))}. ` +
      ((projected.provenance && projected.provenance.parameters.missing === "reference")
        ? "The map is of k-mer profiles with missing data (N runs) read as the reference, so an N run does not move a genome, as the table's distances ignore it."
        : "This map was made before missing data was read as the reference: an N run moves a genome on it (rebuild with --refit), while the table's distances ignore it.");
  }

  // -- the tree -------------------------------------------------------------------------------------

  async function placeOn(name) {
    const box = $("#trace-tree");
    $("#trace-tree-name").textContent = name ? `· ${name}` : "";
    if (!name) {
      const first = state.collections[0];
      box.innerHTML = `<p class="notice" id="trace-no-tree">None of the chosen collections has a tree yet. Build one
        (FastTree on a sample of its genomes) with <code>sandgrain strains tree -c ${esc(first)}</code>,
        then reload this page.</p>`;
      box.dataset.ready = "1";
      return;
    }
    box.innerHTML = '<p class="status">Placing…</p>';
    try {
      state.placed = await send(`${API}/place`, { collection: name, ...state.query });
      drawTree();
    } catch (err) {
      box.innerHTML = `<p class="error">${esc(err.message)}</p>`;
    }
    box.dataset.ready = "1";
  }

  function drawTree() {
    if (!state.placed) return;
    const a = state.placed.answers[Math.min(state.which, state.placed.answers.length - 1)];
    const priv = a.private_mutations.length ? a.private_mutations.map((m) => `<code>${esc(m)}</code>`).join(" ") : "none";
    $("#trace-tree").innerHTML = `<p class="hint">Placed by maximum parsimony on the branch above
      <code>${esc(a.node)}</code>: parsimony score ${a.parsimony}${a.ties > 1 ? ` (${a.ties} equally good branches)` : ""};
      private mutations ${priv}.</p>${a.subtree_svg}`;
  }

  // -- the profile search ---------------------------------------------------------------------------

  /* The query's substitutions shared by most of its neighbours (at most three): the mutations
   * that make its cluster. */
  function defaultExpression(answer) {
    const counts = new Map();
    for (const n of answer.neighbours) {
      for (const m of n.shared) if (SUBSTITUTION.test(m)) counts.set(m, (counts.get(m) || 0) + 1);
    }
    if (!counts.size && answer.neighbours.length) {
      for (const m of answer.neighbours[0].query_only) if (SUBSTITUTION.test(m)) counts.set(m, 0);
    }
    const pos = (m) => Number(SUBSTITUTION.exec(m)[2]);
    return [...counts.entries()].sort((a, b) => b[1] - a[1] || pos(a[0]) - pos(b[0]))
      .slice(0, 3).map(([m]) => m).sort((a, b) => pos(a) - pos(b)).join(" & ");
  }

  async function profile(expression) {
    const summary = $("#trace-profile-summary");
    const month = $("#trace-profile-month");
    const country = $("#trace-profile-country");
    $("#trace-expression").value = expression;
    if (!expression.trim()) {
      summary.textContent = "The sample has no substitution to search for: type a profile.";
      month.innerHTML = country.innerHTML = "";
      month.dataset.ready = "1";
      return;
    }
    summary.textContent = "Searching…";
    try {
      const p = await send(`${API}/profile`, { collections: state.collections, expression, by: ["month", "country"] });
      const freq = p.frequency === null ? "" : `, ${(100 * p.frequency).toFixed(1)} % of those that cover it`;
      const counted = (p.counts_only || []).map((c) => `${c.collection}: ${c.count} (counts only)`).join("; ");
      summary.textContent = `${p.expression}: ${p.count.toLocaleString("en")} of ${p.searched.toLocaleString("en")} genomes${freq}` +
        (p.unknown ? `; ${p.unknown.toLocaleString("en")} unknown (missing data)` : "") + (counted ? `; ${counted}` : "") + ".";
      month.innerHTML = bars((p.by.month || []).filter((r) => r.month), "month", true);
      country.innerHTML = bars((p.by.country || []).filter((r) => r.count > 0).slice(0, MAX_BARS), "country", false);
    } catch (err) {
      summary.innerHTML = `<span class="error">${esc(err.message)}</span>`;
      month.innerHTML = country.innerHTML = "";
    }
    month.dataset.ready = "1";
  }

  /* Bars of matching genomes (dark) over all genomes searched (light), one per label. */
  function bars(rows, key, vertical) {
    if (!rows.length) return '<p class="muted">No genome matches.</p>';
    const top = Math.max(...rows.map((r) => (vertical ? r.searched : r.count)), 1);
    if (vertical) {
      const W = 520, H = 200, pad = 28;
      const bw = (W - 2 * pad) / rows.length;
      const y = (v) => H - pad - (v / top) * (H - 2 * pad);
      const parts = [`<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Matching genomes per ${key}">`];
      rows.forEach((r, i) => {
        const x = pad + i * bw;
        parts.push(`<rect class="all" x="${x + 1}" y="${y(r.searched)}" width="${Math.max(bw - 2, 1)}" height="${H - pad - y(r.searched)}"><title>${esc(r[key])}: ${r.searched} searched</title></rect>`);
        parts.push(`<rect class="hit" x="${x + 1}" y="${y(r.count)}" width="${Math.max(bw - 2, 1)}" height="${H - pad - y(r.count)}"><title>${esc(r[key])}: ${r.count} of ${r.searched} match</title></rect>`);
        if (rows.length <= 16 || i % Math.ceil(rows.length / 16) === 0) {
          parts.push(`<text x="${x + bw / 2}" y="${H - pad + 14}" text-anchor="middle">${esc(r[key])}</text>`);
        }
      });
      parts.push(`<text x="${pad - 4}" y="${pad}" text-anchor="end">${top}</text><text x="${pad - 4}" y="${H - pad}" text-anchor="end">0</text></svg>`);
      return parts.join("");
    }
    const W = 520, row = 20, left = 150;
    const H = rows.length * row + 8;
    const parts = [`<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Matching genomes per ${key}">`];
    rows.forEach((r, i) => {
      const w = (r.count / top) * (W - left - 60);
      parts.push(`<text x="${left - 6}" y="${i * row + 15}" text-anchor="end">${esc(r[key] || "unknown")}</text>`);
      parts.push(`<rect class="hit" x="${left}" y="${i * row + 4}" width="${Math.max(w, 1)}" height="${row - 6}"><title>${esc(r[key])}: ${r.count} of ${r.searched} match</title></rect>`);
      parts.push(`<text x="${left + w + 4}" y="${i * row + 15}">${r.count}</text>`);
    });
    parts.push("</svg>");
    return parts.join("");
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
