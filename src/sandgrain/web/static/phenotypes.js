/* Code a clinical note (/phenotypes): plain JavaScript, no library, nothing from outside the app.
 *
 * "Code" asks POST /api/v1/phenotypes/code for the HPO terms of the note, GET /terms/{id} for the
 * path of each from the ontology's root, and POST /outcome for the status (WHO clinical
 * progression scale) and the vaccination (CVX); it marks each term in the note where it was read,
 * in the style of its context, and lists the terms. A term is removed with its × button and
 * added from the autocomplete (GET /terms?q=). The downloads send the list as it stands
 * ("terms") to POST /fhir and /phenopacket, so the files hold what the page shows.
 * #ph-results says data-ready="1" when drawn and the list data-terms="<count>" (the browser tests
 * read them).
 */
(function () {
  "use strict";

  const $ = (sel) => document.querySelector(sel);
  const API = "/api/v1/phenotypes";
  const KINDS = ["present", "negated", "uncertain", "family_history", "history"];
  const KIND_NAME = { present: "present", negated: "absent", uncertain: "uncertain",
    family_history: "family", history: "history" };
  const SUGGESTIONS = 12;
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

  //: note: the text coded (the offsets point into it); terms: the edited list; paths: id → path.
  const state = { data: {}, note: "", patient: "", status: "", vaccination: "", terms: [],
    paths: new Map(), next: 0, options: [], active: -1, asked: 0 };

  function init() {
    state.data = JSON.parse($("#page-data").textContent || "{}");
    $("#ph-form").addEventListener("submit", (e) => { e.preventDefault(); code(); });
    $("#ph-terms tbody").addEventListener("click", (e) => {
      const b = e.target.closest("button.remove");
      if (b) remove(Number(b.dataset.key));
    });
    const add = $("#ph-add");
    let timer = null;
    add.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(suggest, 150); });
    add.addEventListener("keydown", keys);
    add.addEventListener("blur", () => setTimeout(closeList, 150));
    $("#ph-add-listbox").addEventListener("mousedown", (e) => {
      const li = e.target.closest("[role=option]");
      if (li) { e.preventDefault(); choose(Number(li.dataset.i)); }
    });
    $("#ph-fhir").addEventListener("click", () => download("fhir"));
    $("#ph-phenopacket").addEventListener("click", () => download("phenopacket"));
  }

  function fail(message) {
    const box = $("#ph-error");
    box.textContent = message;
    box.hidden = false;
    $("#ph-status-line").textContent = "";
  }

  // -- coding -------------------------------------------------------------------------------------

  async function code() {
    $("#ph-error").hidden = true;
    const note = $("#ph-note").value;
    if (!note.trim()) return fail("Type or paste a clinical note first.");
    const patient = $("#ph-patient").value.trim();
    if (!patient) return fail("Give the patient an id (it names the FHIR Patient and the Phenopacket).");
    const go = $("#ph-go");
    go.disabled = true;
    $("#ph-status-line").textContent = "Coding…";
    delete $("#ph-results").dataset.ready;
    try {
      const doc = await send(`${API}/code`, { text: note });
      Object.assign(state, { note, patient, status: $("#ph-status").value.trim(),
        vaccination: $("#ph-vaccination").value.trim(), terms: [] });
      for (const kind of KINDS) {
        for (const m of doc[kind] || []) state.terms.push({ key: state.next++, kind, ...m });
      }
      await Promise.all([paths(state.terms.map((t) => t.id)), outcome()]);
      draw();
      const n = state.terms.length;
      const hpo = (doc.provenance && doc.provenance.parameters || {}).hpo_version;
      $("#ph-status-line").textContent = n
        ? `${n} term${n === 1 ? "" : "s"} found${hpo ? ` (HPO ${hpo})` : ""}.`
        : "No phenotype term was found in this note: reword it, or add terms below.";
      $("#ph-results").hidden = false;
      $("#ph-results").dataset.ready = "1";
    } catch (err) {
      fail(`The note could not be coded: ${err.message}`);
    } finally {
      go.disabled = false;
    }
  }

  async function paths(ids) {
    const wanted = [...new Set(ids)].filter((id) => !state.paths.has(id));
    await Promise.all(wanted.map(async (id) => {
      try {
        state.paths.set(id, (await send(`${API}/terms/${encodeURIComponent(id)}`)).path || []);
      } catch (err) {
        state.paths.set(id, null);
      }
    }));
  }

  async function outcome() {
    const who = $("#ph-outcome");
    const vac = $("#ph-vaccines");
    const ask = async (kind, text, box, show) => {
      if (!text) { box.textContent = "not given"; return; }
      try {
        box.innerHTML = show(await send(`${API}/outcome`, { [kind]: text }));
      } catch (err) {
        box.innerHTML = `<span class="error">${esc(err.message)}</span>`;
      }
    };
    await Promise.all([
      ask("status", state.status, who, showStatus),
      ask("vaccination", state.vaccination, vac, showVaccination),
    ]);
  }

  function showStatus(r) {
    if (r.status !== "coded") {
      return `not understood, not guessed: “${esc(r.text)}”${r.reason ? ` (${esc(r.reason)})` : ""}`;
    }
    const w = r.who_scale || {};
    const score = w.score !== null && w.score !== undefined
      ? `${w.score}` : (w.range ? `${w.range[0]}–${w.range[1]}` : "?");
    const read = (r.matched || []).length ? ` · read from ${r.matched.map((m) => `“${esc(m)}”`).join(", ")}` : "";
    const fixed = (r.corrections || []).length ? ` · spelling corrected` : "";
    return `<strong class="code">${esc(score)}</strong> of 10 — ${esc(w.label || "")}${read}${fixed}`;
  }

  function showVaccination(r) {
    if (r.status === "unknown") {
      return `not understood, not guessed: “${esc(r.text)}”${r.reason ? ` (${esc(r.reason)})` : ""}`;
    }
    const doses = (r.vaccines || []).map((v) => {
      const bits = [v.product, v.dose_number ? `${v.dose_number} dose${v.dose_number === 1 ? "" : "s"}` : "",
        v.booster ? "booster" : ""].filter(Boolean).join(", ");
      return `CVX <span class="code">${esc(v.cvx)}</span> ${esc(v.display)}${bits ? ` (${esc(bits)})` : ""}`;
    });
    const head = r.status === "not-done" ? "not vaccinated" : "vaccinated";
    return `${head}${doses.length ? `: ${doses.join("; ")}` : ""}`;
  }

  // -- drawing ------------------------------------------------------------------------------------

  function draw() {
    drawNote();
    drawTerms();
  }

  /** The note with each listed term marked where it was read (overlaps keep the first). */
  function drawNote() {
    const placed = state.terms.filter((t) => Number.isInteger(t.start) && Number.isInteger(t.end))
      .sort((a, b) => a.start - b.start || b.end - a.end);
    let html = "";
    let at = 0;
    for (const t of placed) {
      if (t.start < at) continue;
      html += esc(state.note.slice(at, t.start));
      const what = `${KIND_NAME[t.kind]}: ${t.label} (${t.id})`;
      html += `<mark class="ph ph-${t.kind}" data-id="${esc(t.id)}" data-kind="${t.kind}" data-key="${t.key}"`
        + ` title="${esc(what)}"><span class="w">${esc(state.note.slice(t.start, t.end))}</span>`
        + `<span class="visually-hidden"> [${esc(what)}]</span></mark>`;
      at = t.end;
    }
    html += esc(state.note.slice(at));
    $("#ph-marked").innerHTML = html;
  }

  function drawPath(id, label) {
    const path = state.paths.get(id);
    if (!path || !path.length) return `<span class="here">${esc(label)}</span>`;
    return path.map((p, i) => (i === path.length - 1
      ? `<span class="here">${esc(p.label)}</span>` : esc(p.label))).join(" › ");
  }

  function drawTerms() {
    const rows = state.terms.map((t) => `<tr data-id="${esc(t.id)}" data-kind="${t.kind}" data-key="${t.key}">`
      + `<td><span class="ph ph-${t.kind}">${KIND_NAME[t.kind]}</span></td>`
      + `<td class="id">${esc(t.id)}</td><td class="label">${esc(t.label)}</td>`
      + `<td class="words">${t.text ? `“${esc(t.text)}”` : '<span class="muted">added by hand</span>'}</td>`
      + `<td class="path">${drawPath(t.id, t.label)}</td>`
      + `<td><button type="button" class="remove" data-key="${t.key}" aria-label="Remove ${esc(t.label)} (${KIND_NAME[t.kind]})" title="Remove">×</button></td></tr>`);
    $("#ph-terms tbody").innerHTML = rows.join("");
    $("#ph-terms").dataset.terms = String(state.terms.length);
    $("#ph-none").hidden = state.terms.length > 0;
    const n = state.terms.length;
    $("#ph-count").textContent = `(${n})`;
  }

  function remove(key) {
    const i = state.terms.findIndex((t) => t.key === key);
    if (i < 0) return;
    const [gone] = state.terms.splice(i, 1);
    draw();
    $("#ph-download-status").textContent = `Removed ${gone.label} (${KIND_NAME[gone.kind]}).`;
    const next = document.querySelectorAll("#ph-terms button.remove")[Math.min(i, state.terms.length - 1)];
    (next || $("#ph-add")).focus();
  }

  // -- adding a term ------------------------------------------------------------------------------

  async function suggest() {
    const q = $("#ph-add").value.trim();
    if (q.length < 2) return closeList();
    const asked = ++state.asked;
    let doc;
    try {
      doc = await send(`${API}/terms?q=${encodeURIComponent(q)}&limit=${SUGGESTIONS}`);
    } catch (err) {
      doc = { terms: [] };
    }
    if (asked !== state.asked) return; // a later keystroke asked again
    state.options = doc.terms || [];
    state.active = state.options.length ? 0 : -1;
    drawList();
  }

  function drawList() {
    const list = $("#ph-add-listbox");
    const input = $("#ph-add");
    list.innerHTML = state.options.length
      ? state.options.map((t, i) => `<li role="option" id="ph-opt-${i}" data-i="${i}" data-id="${esc(t.id)}"`
        + ` aria-selected="${i === state.active}"><span class="sym">${esc(t.label)}</span>`
        + `<span class="meta">${esc(t.id)}${t.match && t.match !== t.label ? ` · “${esc(t.match)}”` : ""}</span></li>`).join("")
      : '<li class="none">no matching term</li>';
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    if (state.active >= 0) input.setAttribute("aria-activedescendant", `ph-opt-${state.active}`);
    else input.removeAttribute("aria-activedescendant");
  }

  function closeList() {
    $("#ph-add-listbox").hidden = true;
    $("#ph-add").setAttribute("aria-expanded", "false");
    $("#ph-add").removeAttribute("aria-activedescendant");
  }

  function keys(e) {
    const open = !$("#ph-add-listbox").hidden && state.options.length;
    if (e.key === "Escape") { closeList(); return; }
    if (!open) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const n = state.options.length;
      state.active = (state.active + (e.key === "ArrowDown" ? 1 : n - 1)) % n;
      drawList();
      $(`#ph-opt-${state.active}`).scrollIntoView({ block: "nearest" });
    } else if (e.key === "Enter") {
      e.preventDefault();
      if (state.active >= 0) choose(state.active);
    }
  }

  function choose(i) {
    const t = state.options[i];
    if (!t) return;
    const kind = $("#ph-add-kind").value;
    state.paths.set(t.id, t.path || null);
    state.terms.push({ key: state.next++, kind, id: t.id, label: t.label, text: null, start: null, end: null });
    $("#ph-add").value = "";
    state.options = [];
    closeList();
    draw();
    $("#ph-download-status").textContent = `Added ${t.label} (${KIND_NAME[kind]}).`;
  }

  // -- downloads ----------------------------------------------------------------------------------

  function termsBody() {
    const out = Object.fromEntries(KINDS.map((k) => [k, []]));
    for (const t of state.terms) {
      const term = { id: t.id };
      if (t.text) Object.assign(term, { text: t.text, start: t.start, end: t.end });
      out[t.kind].push(term);
    }
    return out;
  }

  async function download(fmt) {
    const line = $("#ph-download-status");
    const body = { patient: state.patient, text: state.note, terms: termsBody() };
    if (state.status) body.status = state.status;
    if (fmt === "fhir" && state.vaccination) body.vaccination = state.vaccination;
    line.textContent = "Building…";
    try {
      const doc = await send(`${API}/${fmt}`, body);
      const blob = new Blob([JSON.stringify(doc, null, 2) + "\n"],
        { type: fmt === "fhir" ? "application/fhir+json" : "application/json" });
      const a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      const name = state.patient.replace(/[^A-Za-z0-9._-]+/g, "_");
      a.download = `${name}-${fmt === "fhir" ? "fhir-bundle" : "phenopacket"}.json`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      line.textContent = `Downloaded ${a.download}.`;
    } catch (err) {
      line.textContent = "";
      fail(`The ${fmt === "fhir" ? "FHIR Bundle" : "Phenopacket"} could not be built: ${err.message}`);
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
