/* The strain map page (/strains/{collection}): plain JavaScript, no library, nothing from outside.
 *
 * Points come from GET /api/v1/strains/{c}/map a page at a time, as columns, and are kept in typed
 * arrays. One draw is one pass over them writing pixels into an ImageData (a million points draw
 * in tens of milliseconds, no WebGL needed). Hover finds the nearest point through a grid of
 * screen cells rebuilt with each draw; the genome's calls come from /genomes/{strain} on demand.
 * The drift plot is inline SVG from /drift. The canvas says how many points it drew in
 * data-drawn, and data-ready="1" once every page is in (the browser tests read them).
 */
(function () {
  "use strict";

  const $ = (sel) => document.querySelector(sel);
  const API = "/api/v1/strains";
  const NO_DAY = -2147483648;
  const DAY_MS = 86400000;
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#17becf", "#bcbd22", "#393b79", "#ad494a", "#637939"];
  const OTHER = "#b8bcc4";
  const QC_COLOURS = { good: "#1a7f37", mediocre: "#d29922", bad: "#c0392b", unknown: "#9aa0a8" };
  // viridis, sampled
  const RAMP = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];

  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const dayText = (d) => (d === NO_DAY ? "unknown date" : new Date(d * DAY_MS).toISOString().slice(0, 10));
  const hex = (h) => [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)];
  // a colour as the Uint32 a little-endian ImageData holds (ABGR)
  const pack = ([r, g, b]) => ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;

  function rampAt(t) {
    const x = Math.max(0, Math.min(1, t)) * (RAMP.length - 1);
    const i = Math.min(RAMP.length - 2, Math.floor(x));
    const a = hex(RAMP[i]);
    const b = hex(RAMP[i + 1]);
    const f = x - i;
    return a.map((v, k) => Math.round(v + (b[k] - v) * f));
  }

  async function getJSON(url) {
    const r = await fetch(url, { headers: { Accept: "application/json" } });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.detail || `${r.status} ${r.statusText}`);
    return body;
  }

  const state = {
    total: 0, loaded: 0, strains: [], index: new Map(), x: null, y: null, day: null,
    codes: {}, categories: {}, bounds: null, days: null, sx: null, sy: null,
    cutoff: null, colourBy: "date", selected: -1, grid: null, calls: new Map(),
  };

  function init() {
    const data = JSON.parse($("#page-data").textContent || "{}");
    if (!data.collection) return;
    state.collection = data.collection;
    state.pageSize = data.page_size || 200000;
    const pick = $("#strains-collection");
    if (pick) pick.addEventListener("change", () => { location.href = `/strains/${encodeURIComponent(pick.value)}`; });
    $("#strains-colour").addEventListener("change", (e) => { state.colourBy = e.target.value; draw(); });
    $("#strains-slider").addEventListener("input", (e) => { stop(); setCutoff(Number(e.target.value)); });
    $("#strains-play").addEventListener("click", () => (state.timer ? stop() : play()));
    $("#strains-search").addEventListener("submit", (e) => { e.preventDefault(); search($("#strains-query").value); });
    const canvas = $("#strains-canvas");
    canvas.addEventListener("mousemove", hover);
    canvas.addEventListener("mouseleave", () => { $("#strains-tip").hidden = true; });
    canvas.addEventListener("click", (e) => { const i = nearest(e); if (i >= 0) select(i); });
    loadMap().catch((err) => { $("#strains-count").textContent = `— could not load the map: ${err.message}`; });
    loadDrift().catch((err) => { $("#strains-drift").innerHTML = `<p class="error">${esc(err.message)}</p>`; });
  }

  // -- the points -----------------------------------------------------------------------------

  async function loadMap() {
    let offset = 0;
    for (;;) {
      const page = await getJSON(`${API}/${encodeURIComponent(state.collection)}/map?offset=${offset}&limit=${state.pageSize}`);
      if (offset === 0) start(page);
      add(page);
      draw();
      if (page.next_offset == null) break;
      offset = page.next_offset;
    }
    const ids = $("#strains-ids");
    if (state.total <= 5000) ids.innerHTML = state.strains.map((s) => `<option value="${esc(s)}">`).join("");
    $("#strains-canvas").dataset.ready = "1";
  }

  function start(page) {
    const n = page.total;
    state.total = n;
    state.x = new Float64Array(n);
    state.y = new Float64Array(n);
    state.day = new Int32Array(n).fill(NO_DAY);
    state.categories = page.categories;
    state.codes = {};
    for (const name of Object.keys(page.categories)) state.codes[name] = new Int32Array(n);
    state.bounds = page.bounds;
    state.days = page.days;
    const slider = $("#strains-slider");
    if (page.days) {
      slider.min = page.days[0];
      slider.max = page.days[1];
      slider.value = page.days[1];
      state.cutoff = page.days[1];
    } else {
      slider.disabled = true;
      $("#strains-play").disabled = true;
    }
    const ax = page.axes || [];
    const pct = (a) => (a && a.explained_variance_ratio != null ? ` (${(100 * a.explained_variance_ratio).toFixed(1)} % of variance)` : "");
    $("#strains-axes").textContent = ax.length ? `x: ${ax[0].name}${pct(ax[0])} · y: ${ax[1].name}${pct(ax[1])} · map version ${page.map_version}` : "";
    updateDate();
  }

  function add(page) {
    const c = page.columns;
    const o = page.offset;
    for (let k = 0; k < page.count; k++) {
      const i = o + k;
      state.strains[i] = c.strain[k];
      state.index.set(c.strain[k], i);
      state.x[i] = c.x[k] ?? NaN;
      state.y[i] = c.y[k] ?? NaN;
      state.day[i] = c.day[k] == null ? NO_DAY : c.day[k];
      for (const name of Object.keys(state.codes)) state.codes[name][i] = c[name][k];
    }
    state.loaded = o + page.count;
  }

  function project() {
    const canvas = $("#strains-canvas");
    const w = canvas.width;
    const h = canvas.height;
    const pad = 14;
    const [x0, x1] = state.bounds.x;
    const [y0, y1] = state.bounds.y;
    const kx = (w - 2 * pad) / ((x1 - x0) || 1);
    const ky = (h - 2 * pad) / ((y1 - y0) || 1);
    const n = state.loaded;
    state.sx = new Float32Array(n);
    state.sy = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      state.sx[i] = pad + (state.x[i] - x0) * kx;
      state.sy[i] = h - pad - (state.y[i] - y0) * ky;
    }
  }

  function colours() {
    // per point a packed colour, through a small table per category (one look-up per point)
    const by = state.colourBy;
    const legend = [];
    let table;
    let codes;
    if (by === "date") {
      const steps = 64;
      table = new Uint32Array(steps + 1);
      for (let s = 0; s <= steps; s++) table[s] = pack(rampAt(s / steps));
      table[steps] = pack(hex(OTHER));
      const [d0, d1] = state.days || [0, 1];
      codes = new Int32Array(state.loaded);
      for (let i = 0; i < state.loaded; i++) {
        const d = state.day[i];
        codes[i] = d === NO_DAY ? steps : Math.min(steps - 1, Math.floor(((d - d0) / ((d1 - d0) || 1)) * (steps - 1) + 0.5));
      }
      legend.push(`<span>${esc(dayText(d0))} <i class="ramp" style="background:linear-gradient(to right,${RAMP.join(",")})"></i> ${esc(dayText(d1))}</span>`);
      legend.push(`<span><i style="background:${OTHER}"></i>no complete date</span>`);
    } else {
      const names = state.categories[by];
      const hexes = names.map((name, k) => (by === "qc" ? QC_COLOURS[name] || OTHER : name === "unknown" ? OTHER : k < PALETTE.length ? PALETTE[k] : OTHER));
      table = new Uint32Array(hexes.map((h) => pack(hex(h))));
      codes = state.codes[by];
      names.forEach((name, k) => {
        if (k < PALETTE.length || by === "qc") legend.push(`<span><i style="background:${hexes[k]}"></i>${esc(name)}</span>`);
      });
      if (by !== "qc" && names.length > PALETTE.length) legend.push(`<span><i style="background:${OTHER}"></i>${names.length - PALETTE.length} more</span>`);
    }
    $("#strains-legend").innerHTML = legend.join("");
    return { table, codes };
  }

  function visible(i) {
    const d = state.day[i];
    if (state.cutoff == null || !state.days) return true;
    return d === NO_DAY ? state.cutoff >= state.days[1] : d <= state.cutoff;
  }

  function draw() {
    if (!state.loaded) return;
    const canvas = $("#strains-canvas");
    const ctx = canvas.getContext("2d");
    const w = canvas.width;
    const h = canvas.height;
    if (!state.sx || state.sx.length !== state.loaded) project();
    const { table, codes } = colours();
    const img = ctx.createImageData(w, h);
    const px = new Uint32Array(img.data.buffer);
    px.fill(0xffffffff);
    const n = state.loaded;
    const r = n < 20000 ? 2 : n < 200000 ? 1 : 0; // a point is (2r+1)² pixels
    const cell = 8;
    const gw = Math.ceil(w / cell);
    const gh = Math.ceil(h / cell);
    const counts = new Uint32Array(gw * gh + 1);
    const cellOf = new Int32Array(n).fill(-1);
    let drawn = 0;
    for (let i = 0; i < n; i++) {
      if (!visible(i)) continue;
      const cx = Math.round(state.sx[i]);
      const cy = Math.round(state.sy[i]);
      if (!(cx >= 0 && cx < w && cy >= 0 && cy < h)) continue;
      const colour = table[codes[i]];
      for (let yy = Math.max(0, cy - r); yy <= Math.min(h - 1, cy + r); yy++) {
        const row = yy * w;
        for (let xx = Math.max(0, cx - r); xx <= Math.min(w - 1, cx + r); xx++) px[row + xx] = colour;
      }
      const c = Math.floor(cy / cell) * gw + Math.floor(cx / cell);
      cellOf[i] = c;
      counts[c + 1]++;
      drawn++;
    }
    ctx.putImageData(img, 0, 0);
    // the hover grid: points by screen cell (a counting sort)
    for (let c = 1; c < counts.length; c++) counts[c] += counts[c - 1];
    const items = new Int32Array(drawn);
    const fill = counts.slice();
    for (let i = 0; i < n; i++) if (cellOf[i] >= 0) items[fill[cellOf[i]]++] = i;
    state.grid = { cell, gw, gh, start: counts, items };
    if (state.selected >= 0 && visible(state.selected)) {
      ctx.beginPath();
      ctx.arc(state.sx[state.selected], state.sy[state.selected], 7, 0, 2 * Math.PI);
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = "#111";
      ctx.stroke();
    }
    canvas.dataset.drawn = String(drawn);
    $("#strains-count").textContent = `— ${drawn.toLocaleString("en")} of ${state.total.toLocaleString("en")} genomes shown`;
  }

  // -- time -----------------------------------------------------------------------------------

  function updateDate() {
    $("#strains-date").textContent = state.cutoff == null ? "" : dayText(state.cutoff);
  }

  function setCutoff(d) {
    state.cutoff = d;
    $("#strains-slider").value = d;
    updateDate();
    draw();
  }

  function play() {
    if (!state.days) return;
    const [d0, d1] = state.days;
    const step = Math.max(1, Math.round((d1 - d0) / 120));
    let d = state.cutoff >= d1 ? d0 : state.cutoff;
    $("#strains-play").textContent = "❚❚ Pause";
    state.timer = setInterval(() => {
      d = Math.min(d1, d + step);
      setCutoff(d);
      if (d >= d1) stop();
    }, 50);
  }

  function stop() {
    if (state.timer) clearInterval(state.timer);
    state.timer = null;
    $("#strains-play").textContent = "▶ Play";
  }

  // -- hover, click, search -------------------------------------------------------------------

  function nearest(e) {
    const canvas = $("#strains-canvas");
    const g = state.grid;
    if (!g) return -1;
    const rect = canvas.getBoundingClientRect();
    const mx = ((e.clientX - rect.left) * canvas.width) / rect.width;
    const my = ((e.clientY - rect.top) * canvas.height) / rect.height;
    const gx = Math.floor(mx / g.cell);
    const gy = Math.floor(my / g.cell);
    let best = -1;
    let bestD = 7 * 7;
    for (let cy = gy - 1; cy <= gy + 1; cy++) {
      for (let cx = gx - 1; cx <= gx + 1; cx++) {
        if (cx < 0 || cy < 0 || cx >= g.gw || cy >= g.gh) continue;
        const c = cy * g.gw + cx;
        for (let k = g.start[c]; k < g.start[c + 1]; k++) {
          const i = g.items[k];
          const dd = (state.sx[i] - mx) ** 2 + (state.sy[i] - my) ** 2;
          if (dd < bestD) { bestD = dd; best = i; }
        }
      }
    }
    return best;
  }

  function place(i) {
    const country = state.categories.country[state.codes.country[i]];
    const region = state.categories.region[state.codes.region[i]];
    return [country, region].filter((v) => v && v !== "unknown").join(", ") || "unknown place";
  }

  async function calls(i) {
    const strain = state.strains[i];
    if (!state.calls.has(strain)) {
      state.calls.set(strain, getJSON(`${API}/${encodeURIComponent(state.collection)}/genomes/${encodeURIComponent(strain)}`));
    }
    return state.calls.get(strain);
  }

  function hover(e) {
    const tip = $("#strains-tip");
    const i = nearest(e);
    if (i < 0) { tip.hidden = true; return; }
    const canvas = $("#strains-canvas");
    const rect = canvas.getBoundingClientRect();
    tip.style.left = `${Math.min(rect.width - 200, e.clientX - rect.left + 14)}px`;
    tip.style.top = `${e.clientY - rect.top + 14}px`;
    const head = `<strong>${esc(state.strains[i])}</strong><br>${esc(dayText(state.day[i]))} · ${esc(place(i))}`;
    tip.innerHTML = `${head}<br><span class="muted">mutations…</span>`;
    tip.hidden = false;
    state.hovered = i;
    clearTimeout(state.hoverTimer);
    state.hoverTimer = setTimeout(async () => {
      try {
        const g = await calls(i);
        if (state.hovered !== i) return;
        const muts = (g.aa_substitutions.length ? g.aa_substitutions : g.substitutions);
        const first = muts.slice(0, 5).map((m) => `<code>${esc(m)}</code>`).join(" ");
        const more = muts.length > 5 ? ` +${muts.length - 5}` : "";
        tip.innerHTML = `${head}<br>${g.substitutions.length} substitutions${muts.length ? ": " + first + more : ""}`;
      } catch (err) {
        if (state.hovered === i) tip.innerHTML = head;
      }
    }, 120);
  }

  function search(text) {
    const q = text.trim();
    const msg = $("#strains-search-msg");
    if (!q) { msg.textContent = ""; return; }
    let i = state.index.has(q) ? state.index.get(q) : -1;
    if (i < 0) {
      const low = q.toLowerCase();
      i = state.strains.findIndex((s) => s && s.toLowerCase().includes(low));
    }
    if (i < 0) { msg.textContent = `no genome matches “${q}”`; return; }
    msg.textContent = `found ${state.strains[i]}`;
    if (!visible(i) && state.days) setCutoff(state.days[1]);
    select(i);
  }

  function list(title, items, limit = 400) {
    if (!items || !items.length) return `<dt>${title}</dt><dd>none</dd>`;
    const shown = items.slice(0, limit).map((m) => `<li>${esc(m)}</li>`).join("");
    const more = items.length > limit ? `<li>… ${items.length - limit} more</li>` : "";
    return `<dt>${title} (${items.length})</dt><dd><ul class="muts">${shown}${more}</ul></dd>`;
  }

  async function select(i) {
    state.selected = i;
    draw();
    const panel = $("#strains-panel");
    const body = $("#strains-genome");
    panel.hidden = false;
    $("#genome-heading").textContent = state.strains[i];
    body.innerHTML = `<p class="status">Loading…</p>`;
    try {
      const g = await calls(i);
      const qc = g.qc || {};
      const status = qc.status || "unknown";
      const reasons = (qc.reasons || []).join("; ");
      body.innerHTML = `<dl>
        <dt>Date</dt><dd>${esc(dayText(state.day[i]))}</dd>
        <dt>Place</dt><dd>${esc([g.metadata.division, g.metadata.country, g.metadata.region].filter(Boolean).join(", "))}</dd>
        <dt>QC</dt><dd><span class="qc-${esc(status)}">${esc(status)}</span>${reasons ? ` — ${esc(reasons)}` : ""}</dd>
        <dt>Length</dt><dd>${Number(g.length).toLocaleString("en")} bases, ${Number(g.n_count).toLocaleString("en")} N</dd>
        ${list("Substitutions", g.substitutions)}
        ${list("Amino-acid changes", g.aa_substitutions)}
        ${list("Deletions", g.deletions)}
        ${list("Amino-acid deletions", g.aa_deletions)}
        ${list("Insertions", g.insertions)}
        ${list("Missing", g.missing)}
        ${g.frame_shifts.length ? list("Frame shifts", g.frame_shifts) : ""}
        ${g.stop_codons.length ? list("Stop codons", g.stop_codons) : ""}
      </dl>`;
    } catch (err) {
      body.innerHTML = `<p class="error">${esc(err.message)}</p>`;
    }
  }

  // -- drift ----------------------------------------------------------------------------------

  async function loadDrift() {
    const d = await getJSON(`${API}/${encodeURIComponent(state.collection)}/drift`);
    const p = d.points;
    const W = 420;
    const H = 260;
    const L = 44;
    const B = 30;
    const T = 10;
    const R = 10;
    const x0 = p.years.reduce((a, b) => Math.min(a, b), Infinity);
    const x1 = p.years.reduce((a, b) => Math.max(a, b), -Infinity);
    const y1 = p.distance.reduce((a, b) => Math.max(a, b), 1);
    const sx = (v) => L + ((v - x0) / ((x1 - x0) || 1)) * (W - L - R);
    const sy = (v) => H - B - (v / y1) * (H - B - T);
    const dots = p.years.map((v, k) => `<circle cx="${sx(v).toFixed(1)}" cy="${sy(p.distance[k]).toFixed(1)}" r="2.2"><title>${esc(p.strain[k])}: ${p.distance[k]} on ${esc(p.date[k])}</title></circle>`).join("");
    const line = (v) => d.intercept + d.rate * v;
    const toDate = (v) => { const y = Math.floor(v); return new Date(Date.UTC(y, 0, 1) + (v - y) * 365.25 * DAY_MS).toISOString().slice(0, 10); };
    const ticksY = [0, y1 / 2, y1].map((v) => `<text x="${L - 4}" y="${sy(v) + 4}" text-anchor="end">${Math.round(v)}</text>`).join("");
    const svg = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="Distance from the root against collection date" font-size="10" font-family="system-ui, sans-serif">
      <line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="#888"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="#888"/>
      <g fill="#0d5c63" fill-opacity="0.55">${dots}</g>
      <line x1="${sx(x0)}" y1="${sy(Math.max(0, line(x0)))}" x2="${sx(x1)}" y2="${sy(Math.min(y1, line(x1)))}" stroke="#c75c00" stroke-width="2"/>
      ${ticksY}
      <text x="${L}" y="${H - 10}">${esc(toDate(x0))}</text><text x="${W - R}" y="${H - 10}" text-anchor="end">${esc(toDate(x1))}</text>
      <text transform="translate(11 ${(H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(d.metric)} from the ${esc(d.root)}</text>
    </svg>`;
    const acc = d.acceleration || {};
    const verdict = acc.accelerating ? "accelerating" : acc.decelerating ? "decelerating" : "no significant change";
    const fmt = (v, k = 1) => (v == null ? "—" : Number(v).toFixed(k));
    const windows = (d.windows || []).filter((w) => w.rate != null)
      .map((w) => `${esc(w.start)}: ${fmt(w.rate)}/yr (n=${w.n})`).join("<br>") || "too few genomes per window";
    $("#strains-drift").innerHTML = `${svg}<dl>
      <dt>Rate</dt><dd><strong>${fmt(d.rate)}</strong> ${esc(d.metric)}/year (95 % CI ${fmt(d.rate_ci[0])} to ${fmt(d.rate_ci[1])}), ${d.n.toLocaleString("en")} dated genomes${d.points_total > p.years.length ? ` (${p.years.length.toLocaleString("en")} drawn)` : ""}</dd>
      ${d.rate_per_site != null ? `<dt>Per site</dt><dd>${Number(d.rate_per_site).toExponential(2)}/site/year = ${fmt(d.published_ratio, 2)}× the published clock (8 × 10⁻⁴)</dd>` : ""}
      <dt>Acceleration</dt><dd>${esc(verdict)} (p = ${acc.p_value == null ? "—" : Number(acc.p_value).toPrecision(2)})</dd>
      <dt>Per window</dt><dd>${windows}</dd>
    </dl>`;
    $("#strains-drift").dataset.rate = String(d.rate);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
