/* Call variants (/calling): plain JavaScript, no library, nothing from outside the app.
 *
 * "Call variants" POSTs /api/v1/calling/jobs with the chosen read set, follows the job
 * (GET /api/v1/calling/jobs/{id}) with a progress bar, then shows the VCF's records — position,
 * alleles, quality and each sample's genotype and depth — with a link to download the VCF. The URL
 * becomes /calling?job=ID, so a reload (or a shared link) shows the result again.
 * #calling-results says data-ready="1" when drawn (the browser tests read it).
 */
(function () {
  "use strict";

  const $ = (sel) => document.querySelector(sel);
  const API = "/api/v1/calling";
  const POLL_MS = 400;
  const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const num = (n) => Number(n).toLocaleString("en");
  const data = JSON.parse($("#page-data").textContent || "{}");

  async function send(url, body) {
    const r = await fetch(url, body === undefined ? { headers: { Accept: "application/json" } } : {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
    const doc = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(doc.detail || `${r.status} ${r.statusText}`);
    return doc;
  }

  function fail(message) {
    const box = $("#calling-error");
    box.textContent = message;
    box.hidden = false;
    $("#calling-status").textContent = "";
    $("#calling-progress").hidden = true;
    $("#calling-go").disabled = false;
  }

  function describe(name) {
    const s = (data.readsets || []).find((r) => r.name === name);
    if (!s) return "";
    const pairs = s.samples.reduce((a, x) => a + x.pairs, 0);
    return `${s.description ? s.description + ": " : ""}${s.samples.map((x) => x.sample).join(", ")}; ` +
      `${num(pairs)} read pairs over ${num(s.reference_bp)} bp.`;
  }

  async function follow(id) {
    $("#calling-progress").hidden = false;
    $("#calling-go").disabled = true;
    for (;;) {
      let job;
      try {
        job = await send(`${API}/jobs/${encodeURIComponent(id)}`);
      } catch (err) {
        return fail(err.message);
      }
      $("#calling-progress").value = job.progress || 0;
      $("#calling-status").textContent = job.message ? `${job.status}: ${job.message}` : job.status;
      if (job.status === "done") return show(job);
      if (job.status === "failed" || job.status === "cancelled") {
        return fail(`The job ${job.status}${job.error ? ": " + job.error : ""}`);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  function show(job) {
    const c = job.calls;
    $("#calling-progress").hidden = true;
    $("#calling-go").disabled = false;
    $("#calling-status").textContent = "";
    const sel = $("#calling-readset");
    if (sel && [...sel.options].some((o) => o.value === c.readset.name)) sel.value = c.readset.name;
    $("#calling-about").textContent = describe(c.readset.name);
    const r = c.report;
    $("#calling-count").textContent = `(${num(c.total)} records, ${c.samples.length} samples)`;
    $("#calling-summary").textContent =
      `Read set ${c.readset.name}: ${num(r.reads)} reads aligned in ${(r.seconds.align || 0).toFixed(1)} s, ` +
      `${num(r.genome_bp)} bp called in ${(r.seconds.call || 0).toFixed(1)} s over ${r.shards} region${r.shards === 1 ? "" : "s"}.` +
      (c.truncated ? ` The first ${num(c.records.length)} records are shown; the VCF has them all.` : "");
    $("#calling-download").href = c.vcf_url;
    $("#calling-table thead").innerHTML = "<tr><th>Chrom</th><th>Position</th><th>Ref</th><th>Alt</th>" +
      "<th>Type</th><th>Quality</th>" + c.samples.map((s) => `<th>${esc(s)} <span class="muted">GT (depth)</span></th>`).join("") + "</tr>";
    $("#calling-table tbody").innerHTML = c.records.map((v) =>
      `<tr><td>${esc(v.chrom)}</td><td>${num(v.pos)}</td><td class="seq">${esc(v.ref)}</td>` +
      `<td class="seq">${esc(v.alt)}</td><td>${esc(v.type)}</td><td>${v.qual == null ? "." : v.qual.toFixed(1)}</td>` +
      v.calls.map((g) => `<td>${esc(g.gt)}${g.dp == null ? "" : ` <span class="muted">(${esc(g.dp)})</span>`}</td>`).join("") +
      "</tr>").join("");
    const box = $("#calling-results");
    box.hidden = false;
    box.dataset.ready = "1";
  }

  async function start(e) {
    e.preventDefault();
    $("#calling-error").hidden = true;
    delete $("#calling-results").dataset.ready;
    $("#calling-status").textContent = "Starting…";
    let started;
    try {
      started = await send(`${API}/jobs`, { readset: $("#calling-readset").value });
    } catch (err) {
      return fail(err.message);
    }
    history.replaceState(null, "", `/calling?job=${encodeURIComponent(started.id)}`);
    follow(started.id);
  }

  $("#calling-form").addEventListener("submit", start);
  $("#calling-readset").addEventListener("change", (e) => { $("#calling-about").textContent = describe(e.target.value); });
  const job = new URLSearchParams(location.search).get("job");
  if (job) follow(job);
})();
