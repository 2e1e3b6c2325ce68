/* sandgrain web page: the guide design form and a job's result page.
 *
 * Plain JavaScript and inline SVG; no library, nothing loaded from outside the app. Talks to the
 * REST API under /api/v1 (see /docs). The page a script runs on is named by <body data-page>.
 */
(function () {
  "use strict";

  // ------------------------------------------------------------------------------------------
  // small helpers
  // ------------------------------------------------------------------------------------------

  const SVG_NS = "http://www.w3.org/2000/svg";
  const POLL_MS = 500;
  const OFFTARGET_PAGE = 50;
  const enc = encodeURIComponent;
  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => Array.from((root || document).querySelectorAll(selector));

  function esc(value) {
    return String(value == null ? "" : value)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  }

  function fmtInt(n) {
    return n == null ? "—" : Number(n).toLocaleString("en-US");
  }

  function fmtNum(n, digits) {
    if (n == null || Number.isNaN(Number(n))) return "—";
    return Number(n).toFixed(digits);
  }

  function svg(tag, attrs, parent) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function pageData() {
    const node = $("#page-data");
    try {
      return node ? JSON.parse(node.textContent) : {};
    } catch (e) {
      return {};
    }
  }

  /** The message a user can act on from an RFC 9457 problem (or any error body). */
  function problemText(body, status) {
    if (body && typeof body === "object") {
      const d = body.detail;
      if (typeof d === "string" && d) return d;
      if (Array.isArray(d)) {
        return d.map((e) => (e && e.msg ? `${(e.loc || []).join(".")}: ${e.msg}` : String(e))).join("; ");
      }
      if (body.title) return body.title;
    }
    if (status >= 500) return `The server failed (${status}); try again, or look at its log.`;
    return `The server answered ${status}.`;
  }

  /** fetch() with JSON in and out; never throws: {ok, status, body, message}. */
  async function api(url, options) {
    const opts = options || {};
    const init = { method: opts.method || "GET", headers: { Accept: "application/json" } };
    if (opts.json !== undefined) {
      init.method = opts.method || "POST";
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(opts.json);
    }
    let resp;
    try {
      resp = await fetch(url, init);
    } catch (e) {
      return {
        ok: false,
        status: 0,
        body: null,
        message: "Cannot reach the sandgrain server; check that it is still running.",
      };
    }
    let body = null;
    try {
      const text = await resp.text();
      body = text ? JSON.parse(text) : null;
    } catch (e) {
      body = null;
    }
    return { ok: resp.ok, status: resp.status, body, message: resp.ok ? "" : problemText(body, resp.status) };
  }

  function setError(node, input, message) {
    if (node) node.textContent = message || "";
    if (input) {
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    }
  }

  // ------------------------------------------------------------------------------------------
  // genome browsers: UCSC and Ensembl links where the assembly is known
  // ------------------------------------------------------------------------------------------

  const ROMAN = ["", "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII",
    "XIV", "XV", "XVI"];

  function stripChr(chrom) {
    return String(chrom).replace(/^chr/i, "");
  }

  function yeastChrom(chrom) {
    let c = stripChr(chrom);
    if (/^(mito|mt|m|mitochondrion)$/i.test(c)) return { ucsc: "chrM", ensembl: "Mito" };
    if (/^\d+$/.test(c) && Number(c) >= 1 && Number(c) <= 16) c = ROMAN[Number(c)];
    c = c.toUpperCase();
    return { ucsc: "chr" + c, ensembl: c };
  }

  function humanChrom(chrom) {
    const c = stripChr(chrom);
    if (/^(m|mt)$/i.test(c)) return { ucsc: "chrM", ensembl: "MT" };
    return { ucsc: "chr" + c, ensembl: c };
  }

  const ASSEMBLIES = [
    {
      names: [/^r64(-\d+)*$/, /^saccer3$/],
      label: "S. cerevisiae R64 (sacCer3)",
      ucsc: "sacCer3",
      ensembl: "https://www.ensembl.org/Saccharomyces_cerevisiae",
      chrom: yeastChrom,
    },
    {
      names: [/^grch38(\.p\d+)?$/, /^hg38$/],
      label: "human GRCh38 (hg38)",
      ucsc: "hg38",
      ensembl: "https://www.ensembl.org/Homo_sapiens",
      chrom: humanChrom,
    },
    {
      names: [/^grch37(\.p\d+)?$/, /^hg19$/],
      label: "human GRCh37 (hg19)",
      ucsc: "hg19",
      ensembl: "https://grch37.ensembl.org/Homo_sapiens",
      chrom: humanChrom,
    },
  ];

  /** The known assembly of a genome summary ({assembly, aliases, name}), or null. */
  function knownAssembly(genome) {
    if (!genome) return null;
    const names = [genome.assembly].concat(genome.aliases || []).filter(Boolean);
    for (const a of ASSEMBLIES) {
      if (names.some((n) => a.names.some((re) => re.test(String(n).trim().toLowerCase())))) return a;
    }
    return null;
  }

  function browserUrls(assembly, chrom, start, end) {
    if (!assembly || chrom == null || start == null || end == null) return null;
    const c = assembly.chrom(chrom);
    return {
      ucsc: `https://genome.ucsc.edu/cgi-bin/hgTracks?db=${assembly.ucsc}&position=${enc(`${c.ucsc}:${start}-${end}`)}`,
      ensembl: `${assembly.ensembl}/Location/View?r=${enc(`${c.ensembl}:${start}-${end}`)}`,
    };
  }

  // ------------------------------------------------------------------------------------------
  // the design form (/)
  // ------------------------------------------------------------------------------------------

  function initDesign(data) {
    const form = $("#design-form");
    if (!form) return;
    const genomes = {};
    for (const g of data.genomes || []) genomes[g.name] = g;
    const genomeSel = $("#genome");
    const nucSel = $("#nuclease");
    const mmSel = $("#max_mismatches");
    const within = $("#within");
    const submit = $("#submit");
    const fields = {
      gene: { input: $("#gene"), error: $("#gene-error") },
      region: { input: $("#region"), error: $("#region-error") },
      sequence: { input: $("#sequence"), error: $("#sequence-error") },
    };
    const nucErr = $("#nuclease-error");
    const mmErr = $("#mm-error");
    const formErr = $("#form-error");
    const geneHint = $("#gene-hint");
    const geneHintText = geneHint.innerHTML;

    function targetKind() {
      const checked = $("input[name=target]:checked", form);
      return checked ? checked.value : "gene";
    }

    function showTarget() {
      const kind = targetKind();
      for (const panel of $$(".target-panel", form)) panel.hidden = panel.dataset.target !== kind;
    }

    function updateNucleases() {
      const g = genomes[genomeSel.value] || {};
      const indexed = new Set(g.indexed_nucleases || []);
      const missing = [];
      for (const opt of nucSel.options) {
        const n = (data.nucleases || []).find((x) => x.name === opt.value) || { name: opt.value, pam: "" };
        const ok = indexed.has(opt.value);
        opt.disabled = !ok;
        opt.textContent = `${n.name} (${n.pam})${ok ? "" : " — not indexed for this genome"}`;
        if (!ok) missing.push(n.name);
      }
      if (nucSel.selectedOptions[0] && nucSel.selectedOptions[0].disabled) {
        const first = Array.from(nucSel.options).find((o) => !o.disabled);
        if (first) nucSel.value = first.value;
      }
      const hint = $("#nuclease-hint");
      const name = esc(genomeSel.value);
      if (indexed.size === 0) {
        hint.innerHTML = `${name} has no site index yet, so no guides can be designed in it. Run ` +
          `<code>sandgrain genome index ${name} --nuclease SpCas9</code> and reload this page.`;
        submit.disabled = true;
      } else {
        submit.disabled = false;
        hint.innerHTML = missing.length
          ? `Only nucleases indexed for ${name} can be used; ${esc(missing.join(", "))} ` +
            `${missing.length > 1 ? "are" : "is"} not (add one with ` +
            `<code>sandgrain genome index ${name} --nuclease ${esc(missing[0])}</code>).`
          : `Every shipped nuclease is indexed for ${name}.`;
      }
    }

    function clearErrors() {
      for (const f of Object.values(fields)) setError(f.error, f.input, "");
      setError(nucErr, nucSel, "");
      setError(mmErr, mmSel, "");
      formErr.textContent = "";
    }

    // Prefill from the query string (the result page links back here with its parameters).
    const params = new URLSearchParams(location.search);
    if (params.get("genome") && genomes[params.get("genome")]) genomeSel.value = params.get("genome");
    for (const kind of ["gene", "region", "sequence"]) {
      if (params.get(kind)) {
        fields[kind].input.value = params.get(kind);
        const radio = $(`input[name=target][value=${kind}]`, form);
        if (radio) radio.checked = true;
      }
    }
    if (params.get("within")) within.value = params.get("within");
    if (params.get("max_mismatches")) mmSel.value = params.get("max_mismatches");
    updateNucleases();
    if (params.get("nuclease")) {
      const opt = Array.from(nucSel.options).find((o) => o.value === params.get("nuclease"));
      if (opt && !opt.disabled) nucSel.value = opt.value;
    }
    showTarget();

    genomeSel.addEventListener("change", () => {
      updateNucleases();
      clearErrors();
      geneHint.innerHTML = geneHintText;
    });
    for (const radio of $$("input[name=target]", form)) {
      radio.addEventListener("change", () => {
        showTarget();
        clearErrors();
      });
    }

    const combo = setupAutocomplete(fields.gene.input, $("#gene-listbox"), () => genomeSel.value, (gene) => {
      setError(fields.gene.error, fields.gene.input, "");
      const strand = gene.strand === "-" ? "−" : gene.strand || "";
      geneHint.textContent = [
        gene.symbol || gene.gene_id,
        gene.gene_id,
        gene.chrom != null ? `${gene.chrom}:${fmtInt(gene.start)}-${fmtInt(gene.end)} (${strand})` : "",
        gene.biotype || "",
      ].filter(Boolean).join(" · ");
    });
    fields.gene.input.addEventListener("input", () => {
      setError(fields.gene.error, fields.gene.input, "");
      geneHint.innerHTML = geneHintText;
    });

    /** Where an API error belongs: next to the field it is about. */
    function placeError(message, kind) {
      const text = message.toLowerCase();
      if (/nuclease|site index|genome index|\bpam\b/.test(text)) {
        setError(nucErr, nucSel, message);
        nucSel.focus();
      } else if (/mismatch/.test(text)) {
        setError(mmErr, mmSel, message);
        mmSel.focus();
      } else if (/unknown genome/.test(text)) {
        formErr.textContent = message;
        genomeSel.focus();
      } else {
        setError(fields[kind].error, fields[kind].input, message);
        fields[kind].input.focus();
      }
    }

    function suggestButtons(label, names) {
      const box = document.createElement("span");
      box.className = "suggest";
      box.append(label);
      for (const name of names) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = name;
        b.addEventListener("click", () => {
          fields.gene.input.value = name;
          setError(fields.gene.error, fields.gene.input, "");
          fields.gene.input.focus();
        });
        box.append(b);
      }
      fields.gene.error.append(box);
    }

    /** After an unknown or ambiguous gene: the API's candidates, else genes that share the
     * longest start with what was typed, as buttons that fill the field. */
    async function suggest(kind, body, typed) {
      if (kind !== "gene") return;
      const given = body && Array.isArray(body.candidates) ? body.candidates : [];
      if (given.length) {
        const names = given.slice(0, 8).map((c) => (typeof c === "string" ? c : c.symbol || c.gene_id || String(c)));
        suggestButtons("Did you mean: ", names);
        return;
      }
      if (!(body && body.status === 404 && /\bgene\b/i.test(body.detail || ""))) return;
      const genome = genomeSel.value;
      for (let n = Math.min(typed.length - 1, 6); n >= 3; n -= 1) {
        const prefix = typed.slice(0, n);
        const res = await api(`/api/v1/genomes/${enc(genome)}/genes?prefix=${enc(prefix)}&limit=8`);
        if (fields.gene.input.value.trim() !== typed) return; // the user moved on
        if (res.ok && Array.isArray(res.body) && res.body.length) {
          suggestButtons(`Genes of ${genome} starting with “${prefix}”: `, res.body.map((g) => g.symbol || g.gene_id));
          return;
        }
      }
      fields.gene.error.append(document.createTextNode(
        ` — check the spelling, or type its first letters and pick it from the list (symbols, aliases and IDs of ${genome} are known).`));
    }

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      combo.cancel();
      clearErrors();
      const kind = targetKind();
      const value = fields[kind].input.value.trim();
      if (!value) {
        const what = { gene: "a gene name or ID (e.g. ADE2)", region: "a region such as XV:564476-566191",
          sequence: "a DNA sequence" }[kind];
        setError(fields[kind].error, fields[kind].input, `Type ${what}.`);
        fields[kind].input.focus();
        return;
      }
      const body = {
        genome: genomeSel.value,
        nuclease: nucSel.value,
        max_mismatches: Number(mmSel.value),
      };
      body[kind] = value;
      if (kind === "gene") body.within = within.value;
      submit.disabled = true;
      const label = submit.textContent;
      submit.textContent = "Submitting…";
      const res = await api("/api/v1/guides/jobs", { json: body });
      if (res.ok && res.body && res.body.id) {
        location.assign(`/jobs/${enc(res.body.id)}`);
        return;
      }
      submit.disabled = false;
      submit.textContent = label;
      if (res.status === 0) {
        formErr.textContent = res.message;
        return;
      }
      placeError(res.message, kind);
      suggest(kind, res.body, value);
    });
  }

  /** An ARIA 1.2 combobox: debounced gene look-ups, arrow keys, Enter, Escape. */
  function setupAutocomplete(input, list, genomeOf, onChoose) {
    let timer = null;
    let token = 0;
    let items = [];
    let active = -1;

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function open() {
      if (!list.children.length) return;
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }

    function mark() {
      $$("[role=option]", list).forEach((li, i) => {
        li.setAttribute("aria-selected", i === active ? "true" : "false");
        if (i === active) {
          input.setAttribute("aria-activedescendant", li.id);
          li.scrollIntoView({ block: "nearest" });
        }
      });
      if (active < 0) input.removeAttribute("aria-activedescendant");
    }

    function choose(i) {
      const gene = items[i];
      if (!gene) return;
      input.value = gene.symbol || gene.gene_id;
      close();
      onChoose(gene);
    }

    function render(query) {
      list.innerHTML = "";
      active = -1;
      if (!items.length) {
        const li = document.createElement("li");
        li.className = "none";
        li.setAttribute("role", "option");
        li.setAttribute("aria-disabled", "true");
        li.id = "gene-none";
        li.textContent = `No gene starts with “${query}”`;
        list.append(li);
      }
      items.forEach((g, i) => {
        const li = document.createElement("li");
        li.id = `gene-option-${i}`;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.dataset.symbol = g.symbol || g.gene_id;
        const where = g.chrom != null ? `${g.chrom}:${fmtInt(g.start)}-${fmtInt(g.end)}` : "";
        li.innerHTML = `<span class="sym">${esc(g.symbol || g.gene_id)}</span>` +
          `<span class="meta">${esc([g.symbol && g.gene_id !== g.symbol ? g.gene_id : "", where,
            g.biotype].filter(Boolean).join(" · "))}</span>`;
        li.addEventListener("mousedown", (e) => e.preventDefault());
        li.addEventListener("click", () => choose(i));
        list.append(li);
      });
      open();
    }

    async function lookup() {
      const query = input.value.trim();
      const mine = ++token;
      if (!query) {
        items = [];
        list.innerHTML = "";
        close();
        return;
      }
      const url = `/api/v1/genomes/${enc(genomeOf())}/genes?prefix=${enc(query)}&limit=20`;
      const res = await api(url);
      if (mine !== token) return; // a newer keystroke won
      if (!res.ok || !Array.isArray(res.body)) {
        items = [];
        list.innerHTML = "";
        close();
        return;
      }
      items = res.body;
      render(query);
    }

    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(lookup, 180);
    });
    input.addEventListener("keydown", (e) => {
      const n = items.length;
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        if (!n) return;
        e.preventDefault();
        if (list.hidden) open();
        if (e.key === "ArrowDown") active = active < n - 1 ? active + 1 : 0;
        else active = active > 0 ? active - 1 : n - 1;
        mark();
      } else if (e.key === "Enter") {
        if (!list.hidden && active >= 0) {
          e.preventDefault();
          choose(active);
        } else {
          close();
        }
      } else if (e.key === "Escape") {
        if (!list.hidden) {
          e.preventDefault();
          close();
        }
      } else if (e.key === "Tab") {
        close();
      }
    });
    input.addEventListener("blur", () => setTimeout(close, 120));
    return {
      /** Forget pending look-ups and close the list (the form is being submitted). */
      cancel() {
        clearTimeout(timer);
        token += 1;
        close();
      },
    };
  }

  // ------------------------------------------------------------------------------------------
  // the job page (/jobs/{id})
  // ------------------------------------------------------------------------------------------

  const SCORE_BINS = [
    { min: 90, color: "#00785a", label: "90–100" },
    { min: 70, color: "#2c7bb6", label: "70–90" },
    { min: 50, color: "#d98c00", label: "50–70" },
    { min: -Infinity, color: "#c0392b", label: "below 50" },
  ];

  function scoreColor(score) {
    if (score == null) return "#7a7a7a";
    return SCORE_BINS.find((b) => score >= b.min).color;
  }

  function guideFlags(g) {
    const flags = [];
    if (g.tttt) flags.push({ cls: "tttt", text: "TTTT", title: "TTTT in the protospacer ends U6 transcription" });
    if (g.masked) flags.push({ cls: "masked", text: "soft-masked", title: `${g.masked} soft-masked (repeat) base(s)` });
    if (g.offtarget_counts && g.offtarget_counts[0] > 0) {
      flags.push({ cls: "exact", text: "0-mm off-target", title: "another perfect match in the genome" });
    }
    return flags;
  }

  function positionText(g) {
    return g.chrom != null ? `${g.chrom}:${fmtInt(g.start)}-${fmtInt(g.end)}` : "—";
  }

  function strandText(s) {
    return s === "-" ? "−" : s || "";
  }

  function initJob(data) {
    const root = $("#job");
    if (!root || !$("#progress")) return;
    const jobId = root.dataset.jobId;
    const jobUrl = `/api/v1/jobs/${enc(jobId)}`;
    const bar = $("#progress");
    const statusLine = $("#job-status");
    const cancelBtn = $("#cancel");
    const errorBox = $("#job-error");
    const genomes = {};
    for (const g of data.genomes || []) genomes[g.name] = g;
    let finished = false;
    let failures = 0;
    let described = false;
    let job = null;

    function setProgress(status, fraction) {
      const pct = status === "done" ? 100 : Math.max(0, Math.min(100, Math.round((fraction || 0) * 100)));
      $(".progress-bar", bar).style.width = `${pct}%`;
      bar.setAttribute("aria-valuenow", String(pct));
      bar.setAttribute("aria-valuetext", `${pct}% — ${status}`);
      bar.classList.toggle("done", status === "done");
      bar.classList.toggle("failed", status === "failed" || status === "cancelled");
    }

    function describe(j) {
      if (described) return;
      described = true;
      const p = j.params || {};
      const seqLength = p.sequence_length != null ? p.sequence_length : String(p.sequence || "").replace(/\s/g, "").length;
      const target = p.gene || p.region || (p.sequence ? `a ${fmtInt(seqLength)}-bp sequence` : null);
      if (target) {
        $("#job-title").textContent = `Guides for ${target}`;
        document.title = `sandgrain — ${target} (${p.genome || ""})`;
      }
      const bits = [
        p.genome && `genome ${p.genome}`,
        p.nuclease && p.nuclease,
        p.max_mismatches != null && `up to ${p.max_mismatches} mismatches`,
        p.gene && p.within && `within ${p.within}`,
      ].filter(Boolean);
      $("#job-summary").innerHTML = `${esc(bits.join(" · "))} · job <code>${esc(jobId)}</code>`;
      const back = new URLSearchParams();
      for (const k of ["genome", "gene", "region", "nuclease", "max_mismatches", "within"]) {
        if (p[k] != null) back.set(k, p[k]);
      }
      $("#new-design").href = `/?${back.toString()}`;
    }

    function elapsed(j) {
      const t = (v) => (typeof v === "number" ? v * (v < 1e11 ? 1000 : 1) : Date.parse(v));
      const a = t(j.started || j.created);
      const b = t(j.finished);
      return Number.isFinite(a) && Number.isFinite(b) && b >= a ? ` in ${((b - a) / 1000).toFixed(1)} s` : "";
    }

    function showError(html) {
      errorBox.innerHTML = html;
      errorBox.hidden = false;
    }

    async function poll() {
      const res = await api(jobUrl);
      if (!res.ok) {
        if (res.status === 404) {
          finished = true;
          cancelBtn.hidden = true;
          statusLine.textContent = "";
          showError(`<p><strong>No such job.</strong> ${esc(res.message)}</p><p><a href="/">Start a new design</a>.</p>`);
          return;
        }
        failures += 1;
        statusLine.textContent = `${res.message} Retrying…`;
        setTimeout(poll, Math.min(5000, POLL_MS * 2 ** failures));
        return;
      }
      failures = 0;
      job = res.body;
      describe(job);
      setProgress(job.status, job.progress);
      const pct = Math.round((job.progress || 0) * 100);
      if (job.status === "queued") {
        statusLine.textContent = "Queued: waiting for a free worker…";
      } else if (job.status === "running") {
        statusLine.textContent = `Running: ${job.message ? `${job.message} — ` : "searching the genome — "}${pct}%`;
      }
      if ((job.status === "queued" || job.status === "running") && job.cancel_requested) {
        statusLine.textContent = `Cancelling: the job stops at its next checkpoint (${pct}% done)…`;
        cancelBtn.disabled = true;
        cancelBtn.textContent = "Cancelling…";
      }
      if (job.status === "queued" || job.status === "running") {
        cancelBtn.hidden = false;
        setTimeout(poll, POLL_MS);
        return;
      }
      finished = true;
      cancelBtn.hidden = true;
      const redo = $("#new-design").getAttribute("href");
      if (job.status === "done") {
        statusLine.textContent = `Done${elapsed(job)}. Loading the result…`;
        loadResult();
      } else if (job.status === "cancelled") {
        statusLine.textContent = "Cancelled.";
        showError(`<p><strong>This job was cancelled</strong> before it finished.</p><p><a href="${esc(redo)}">Submit it again</a>.</p>`);
      } else {
        statusLine.textContent = "Failed.";
        showError(`<p><strong>The design failed:</strong> ${esc(job.error || "no reason was given")}</p>` +
          `<p><a href="${esc(redo)}">Change the design and try again</a>.</p>`);
      }
    }

    cancelBtn.addEventListener("click", async () => {
      if (finished) return;
      cancelBtn.disabled = true;
      cancelBtn.textContent = "Cancelling…";
      const res = await api(jobUrl, { method: "DELETE" });
      if (!res.ok) {
        cancelBtn.disabled = false;
        cancelBtn.textContent = "Cancel";
        statusLine.textContent = `Could not cancel: ${res.message}`;
      }
    });

    async function loadResult() {
      let base = `/api/v1/jobs/${enc(jobId)}/result`;
      if (job && typeof job.result_url === "string" && job.result_url.startsWith("/")) {
        base = job.result_url.split("?")[0];
      }
      let res = await api(`${base}?format=json&offtargets_limit=0`);
      if (!res.ok && (res.status === 400 || res.status === 422)) res = await api(`${base}?format=json&offtargets_limit=20`);
      if (!res.ok) {
        showError(`<p><strong>The result could not be loaded:</strong> ${esc(res.message)}</p>`);
        return;
      }
      const doc = res.body;
      if (!doc || !Array.isArray(doc.guides)) {
        statusLine.textContent = `Done${elapsed(job)}.`;
        showError(`<p>This job (${esc(job.kind || "unknown kind")}) is not a guide design; ` +
          `<a href="${esc(base)}">its result as JSON</a>.</p>`);
        return;
      }
      statusLine.textContent = `Done${elapsed(job)}: ${fmtInt(doc.guides.length)} guides.`;
      new ResultView(doc, jobId, base, genomes[doc.genome] || findGenome(genomes, doc.genome)).show();
    }

    poll();
  }

  function findGenome(genomes, name) {
    const lower = String(name || "").toLowerCase();
    return Object.values(genomes).find(
      (g) => g.name.toLowerCase() === lower || (g.aliases || []).some((a) => a.toLowerCase() === lower),
    );
  }

  // ------------------------------------------------------------------------------------------
  // the result: gene model drawing, guide table, off-targets
  // ------------------------------------------------------------------------------------------

  class ResultView {
    constructor(doc, jobId, resultBase, genome) {
      this.doc = doc;
      this.jobId = jobId;
      this.base = resultBase;
      this.genome = genome || null;
      this.assembly = knownAssembly(genome);
      this.guides = doc.guides;
      this.byRank = new Map(this.guides.map((g) => [g.rank, g]));
      this.k = doc.max_mismatches != null ? doc.max_mismatches
        : Math.max(0, ...this.guides.map((g) => (g.offtarget_counts || []).length - 1));
      this.pamSide = String((doc.nuclease && doc.nuclease.pam_side) || "3");
      this.sort = { key: "rank", dir: "ascending" };
      this.selected = null;
      this.otToken = 0;
      this.rows = new Map();
      this.marks = new Map();
    }

    show() {
      $("#results").hidden = false;
      this.renderHeader();
      this.renderTable();
      this.renderModel();
      this.bindOfftargets();
      const m = /^#guide-(\d+)$/.exec(location.hash);
      if (m && this.byRank.has(Number(m[1]))) this.openOfftargets(Number(m[1]), 0, false);
    }

    // --- header: title, downloads, browser links ----------------------------------------

    renderHeader() {
      const t = this.doc.target || {};
      const nuc = this.doc.nuclease || {};
      if (t.name) $("#job-title").textContent = `Guides for ${t.name}`;
      const bits = [];
      if (t.type === "gene") {
        bits.push(`${t.name}${t.gene_id && t.gene_id !== t.name ? ` (${t.gene_id})` : ""}`);
        if (t.location) bits.push(`${t.location}, ${strandText(t.strand)} strand`);
        if (t.within) bits.push(`within ${t.within} (${fmtInt(t.length)} bp)`);
      } else if (t.type === "sequence" || t.type === "fasta") {
        $("#job-title").textContent = `Guides for a ${fmtInt(t.length)}-bp sequence`;
        bits.push(`pasted sequence (${fmtInt(t.length)} bp; guide positions are in it, off-target positions in the genome)`);
      } else if (t.type) {
        bits.push(`${t.type} ${t.name || ""} (${fmtInt(t.length)} bp)`);
      }
      bits.push(`genome ${this.doc.genome}`);
      if (nuc.name) bits.push(`${nuc.name} (${nuc.pam})`);
      bits.push(`up to ${this.k} mismatches`);
      $("#job-summary").innerHTML = `${esc(bits.join(" · "))} · job <code>${esc(this.jobId)}</code>`;

      const stem = `${t.name || "guides"}-${this.doc.genome}-${nuc.name || "guides"}`.replace(/[^A-Za-z0-9._-]+/g, "_");
      for (const fmt of ["tsv", "bed", "json"]) {
        const a = $(`#download-${fmt}`);
        a.href = `${this.base}?format=${fmt}`;
        a.setAttribute("download", `${stem}.${fmt}`);
      }

      const box = $("#browser-links");
      box.innerHTML = "";
      const region = this.targetSpan();
      const urls = region && browserUrls(this.assembly, region.chrom, region.start, region.end);
      if (urls) {
        box.innerHTML = `<span class="toolbar-label">View ${esc(region.chrom)}:${fmtInt(region.start)}-${fmtInt(region.end)} in</span>` +
          `<a class="button" id="link-ucsc" href="${esc(urls.ucsc)}" target="_blank" rel="noopener">UCSC</a>` +
          `<a class="button" id="link-ensembl" href="${esc(urls.ensembl)}" target="_blank" rel="noopener">Ensembl</a>`;
      } else if (t.type === "gene" || t.type === "region") {
        box.innerHTML = `<span class="hint">No genome-browser links: the assembly of ${esc(this.doc.genome)} ` +
          `${this.genome && this.genome.assembly ? `(${esc(this.genome.assembly)}) ` : ""}is not one UCSC and Ensembl are known to show here.</span>`;
      }
    }

    /** {chrom, start, end} of the target in the genome (null for a pasted sequence). */
    targetSpan() {
      const t = this.doc.target || {};
      if (t.type !== "gene" && t.type !== "region") return null;
      const regions = t.regions || [];
      if (!regions.length) return null;
      return {
        chrom: regions[0].chrom,
        start: Math.min(...regions.map((r) => r.start)),
        end: Math.max(...regions.map((r) => r.end)),
      };
    }

    // --- the drawing ----------------------------------------------------------------------

    async renderModel() {
      const t = this.doc.target || {};
      let model = null;
      if (t.type === "gene") {
        const res = await api(`/api/v1/genomes/${enc(this.doc.genome)}/genes/${enc(t.gene_id || t.name)}`);
        if (res.ok && res.body) model = this.geneModel(res.body);
      }
      if (!model) model = this.regionModel();
      this.drawModel(model);
    }

    geneModel(gene) {
      const span = (x) => (Array.isArray(x) ? { start: x[0] + 1, end: x[1] } : { start: x.start, end: x.end });
      let start = gene.start;
      let end = gene.end;
      if ((start == null || end == null) && gene.location) {
        const m = /:(\d[\d,]*)-(\d[\d,]*)/.exec(gene.location);
        if (m) [start, end] = [Number(m[1].replace(/,/g, "")), Number(m[2].replace(/,/g, ""))];
      }
      if (start == null && gene.start0 != null) [start, end] = [gene.start0 + 1, gene.end0];
      const exons = (gene.exons || []).map(span);
      return {
        kind: "gene",
        name: gene.symbol || gene.gene_id,
        chrom: gene.chrom,
        start,
        end,
        strand: gene.strand,
        exons: exons.length ? exons : [{ start, end }],
        cds: (gene.cds || []).map(span),
      };
    }

    regionModel() {
      const t = this.doc.target || {};
      const regions = (t.regions || []).slice();
      const chrom = regions.length ? regions[0].chrom : this.guides.length ? this.guides[0].chrom : "";
      const start = regions.length ? Math.min(...regions.map((r) => r.start)) : 1;
      const end = regions.length ? Math.max(...regions.map((r) => r.end)) : t.length || 1;
      return {
        kind: t.type || "region",
        name: t.type === "gene" ? t.name : t.type === "sequence" ? "sequence" : `${chrom}`,
        chrom,
        start,
        end,
        strand: t.type === "gene" ? t.strand : null,
        exons: regions.length ? regions.map((r) => ({ start: r.start, end: r.end })) : [{ start, end }],
        cds: [],
      };
    }

    drawModel(model) {
      const host = $("#model-svg");
      host.innerHTML = "";
      const guides = this.guides.filter((g) => g.chrom == null || model.chrom == null || String(g.chrom) === String(model.chrom));
      let lo = model.start;
      let hi = model.end;
      for (const g of guides) {
        if (g.start != null) lo = Math.min(lo, g.start);
        if (g.end != null) hi = Math.max(hi, g.end);
      }
      const padBp = Math.max(10, Math.round((hi - lo + 1) * 0.02));
      lo = Math.max(1, lo - padBp);
      hi += padBp;
      const W = 1000;
      const L = 78;
      const R = 16;
      const x = (pos) => L + ((pos - lo) / Math.max(1, hi - lo)) * (W - L - R);

      // lanes: guides that would overlap on screen go to the next lane (per strand)
      const MAX_LANES = 6;
      const lanes = { "+": [], "-": [] };
      const placed = [];
      const sorted = guides.slice().sort((a, b) => a.start - b.start || a.rank - b.rank);
      for (const g of sorted) {
        const s = g.strand === "-" ? "-" : "+";
        const x0 = x(g.start);
        const x1 = Math.max(x0 + 3, x(g.end + 1));
        let lane = lanes[s].findIndex((last) => last + 1 < x0);
        if (lane < 0 && lanes[s].length < MAX_LANES) {
          lane = lanes[s].length;
          lanes[s].push(0);
        } else if (lane < 0) {
          lane = lanes[s].indexOf(Math.min(...lanes[s])); // full: overlap the least crowded
        }
        lanes[s][lane] = Math.max(lanes[s][lane], x1);
        placed.push({ g, s, lane, x0, x1 });
      }
      const laneH = 12;
      const tickH = 10;
      const nPlus = Math.max(1, lanes["+"].length);
      const nMinus = Math.max(1, lanes["-"].length);
      const top = 6;
      const plusBase = top + nPlus * laneH;
      const geneY = plusBase + 22;
      const minusTop = geneY + 22;
      const axisY = minusTop + nMinus * laneH + 14;
      const H = axisY + 30;

      const root = svg("svg", {
        viewBox: `0 0 ${W} ${H}`,
        role: "img",
        "aria-labelledby": "model-title model-desc",
        id: "model-drawing",
      });
      const title = svg("title", { id: "model-title" }, root);
      title.textContent = `${model.kind === "gene" ? "Gene model of" : "Target"} ${model.name}, ${model.chrom}:${fmtInt(model.start)}-${fmtInt(model.end)}`;
      const desc = svg("desc", { id: "model-desc" }, root);
      desc.textContent = `${placed.length} guides drawn as ticks coloured by score: plus-strand guides above the ${model.kind === "gene" ? "gene" : "target"}, minus-strand guides below.`;

      // labels
      const label = (y, text, cls) => {
        const t = svg("text", { x: 4, y, class: cls || "label", "dominant-baseline": "middle" }, root);
        t.textContent = text;
      };
      label(top + (nPlus * laneH) / 2, "+ strand");
      label(minusTop + (nMinus * laneH) / 2, "− strand");

      // the gene: backbone (introns), exons, CDS, strand arrows
      const gx0 = x(model.start);
      const gx1 = x(model.end + 1);
      const gene = svg("g", { class: "gene" }, root);
      svg("line", { x1: gx0, x2: gx1, y1: geneY, y2: geneY, stroke: "#3b4350", "stroke-width": 2 }, gene);
      const chevronAt = [];
      if (model.strand === "+" || model.strand === "-") {
        const dir = model.strand === "+" ? 1 : -1;
        for (let cx = gx0 + 12; cx < gx1 - 6; cx += 36) chevronAt.push(cx);
        const drawChevron = (cx, color) => {
          svg("polyline", {
            points: `${cx - 3 * dir},${geneY - 4} ${cx + 2 * dir},${geneY} ${cx - 3 * dir},${geneY + 4}`,
            fill: "none", stroke: color, "stroke-width": 1.5,
          }, gene);
        };
        for (const cx of chevronAt) drawChevron(cx, "#3b4350");
        // the 3' end arrow beyond the last base
        const tip = dir > 0 ? gx1 + 10 : gx0 - 10;
        const tail = dir > 0 ? gx1 : gx0;
        svg("line", { x1: tail, x2: tip, y1: geneY, y2: geneY, stroke: "#3b4350", "stroke-width": 2 }, gene);
        svg("polygon", {
          points: `${tip + 6 * dir},${geneY} ${tip},${geneY - 5} ${tip},${geneY + 5}`,
          fill: "#3b4350",
        }, gene);
        this.chevron = { drawChevron, chevronAt };
      }
      const inAny = (cx, list) => list.some((e) => cx >= x(e.start) && cx <= x(e.end + 1));
      const hasCds = model.cds.length > 0;
      for (const e of model.exons) {
        const h = hasCds ? 12 : 20;
        const r = svg("rect", {
          x: x(e.start), y: geneY - h / 2, width: Math.max(1.5, x(e.end + 1) - x(e.start)), height: h,
          fill: "#5d6b7a", class: "exon",
        }, gene);
        svg("title", {}, r).textContent = `exon ${fmtInt(e.start)}-${fmtInt(e.end)}`;
      }
      for (const c of model.cds) {
        const r = svg("rect", {
          x: x(c.start), y: geneY - 10, width: Math.max(1.5, x(c.end + 1) - x(c.start)), height: 20,
          fill: "#3b4350", class: "cds",
        }, gene);
        svg("title", {}, r).textContent = `coding sequence ${fmtInt(c.start)}-${fmtInt(c.end)}`;
      }
      if (this.chevron) {
        for (const cx of this.chevron.chevronAt) {
          if (inAny(cx, model.exons)) this.chevron.drawChevron(cx, "#ffffff");
        }
      }
      const name = svg("text", { x: 4, y: geneY, class: "label", "dominant-baseline": "middle", "font-weight": 600 }, root);
      name.textContent = `${model.name}${model.strand ? ` (${strandText(model.strand)})` : ""}`;

      // guides
      const marks = svg("g", { class: "guide-marks" }, root);
      for (const p of placed) {
        const g = p.g;
        const y = p.s === "+" ? plusBase - (p.lane + 1) * laneH + (laneH - tickH) : minusTop + p.lane * laneH;
        const flagged = g.tttt || (g.offtarget_counts && g.offtarget_counts[0] > 0);
        const m = svg("g", {
          class: flagged ? "guide-mark flagged" : "guide-mark",
          "data-rank": g.rank,
          "data-score": g.score == null ? "" : g.score,
        }, marks);
        const color = scoreColor(g.score);
        svg("rect", { x: p.x0, y, width: p.x1 - p.x0, height: tickH, fill: color, stroke: color, rx: 1 }, m);
        svg("title", {}, m).textContent = `#${g.rank} ${g.sequence} ${g.pam || ""} ${positionText(g)} (${strandText(g.strand)}) score ${fmtNum(g.score, 1)}`;
        this.marks.set(g.rank, m);
      }

      // coordinate axis
      const axis = svg("g", { class: "axis" }, root);
      svg("line", { x1: x(lo), x2: x(hi), y1: axisY, y2: axisY, stroke: "#3b4350" }, axis);
      const span = hi - lo;
      const raw = span / 8;
      const mag = 10 ** Math.floor(Math.log10(Math.max(1, raw)));
      const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) || mag * 10;
      for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
        svg("line", { x1: x(v), x2: x(v), y1: axisY, y2: axisY + 5, stroke: "#3b4350" }, axis);
        const t = svg("text", { x: x(v), y: axisY + 18, "text-anchor": "middle" }, axis);
        t.textContent = fmtInt(v);
      }
      const chromLabel = svg("text", { x: 4, y: axisY + 18 }, axis);
      chromLabel.textContent = model.chrom != null ? String(model.chrom) : "";
      host.append(root);

      $("#model-caption").textContent = model.kind === "gene"
        ? `Gene model of ${model.name} (${model.chrom}:${fmtInt(model.start)}-${fmtInt(model.end)}, ${strandText(model.strand)} strand): exons as boxes${hasCds ? " (coding parts taller)" : ""}, introns as lines, arrows give the direction of transcription; each tick is a guide.`
        : `${model.name === "sequence" ? "The pasted sequence" : `Region ${model.chrom}:${fmtInt(model.start)}-${fmtInt(model.end)}`}; each tick is a guide.`;
      const scoreName = this.doc.nuclease && this.doc.guides.some((g) => g.cfd_specificity != null)
        ? "CFD specificity" : "count specificity";
      $("#legend").innerHTML = `<span>Guide score (${scoreName}, higher is better):</span>` +
        SCORE_BINS.map((b) => `<span><span class="swatch" style="background:${b.color}"></span>${esc(b.label)}</span>`).join("") +
        '<span><span class="swatch" style="background:transparent;border:1.5px solid #00785a"></span>flagged (TTTT or a 0-mismatch off-target; ranked last)</span>' +
        "<span>Hover a tick for the guide, click it for its off-targets.</span>";
      this.bindMarks(root);
      this.applyFilter();
      if (this.selected != null) this.highlight(this.selected);
    }

    bindMarks(root) {
      const tip = $("#tooltip");
      const fig = $("#model");
      const markOf = (e) => e.target.closest && e.target.closest(".guide-mark");
      root.addEventListener("mousemove", (e) => {
        const m = markOf(e);
        if (!m) {
          tip.hidden = true;
          return;
        }
        const g = this.byRank.get(Number(m.dataset.rank));
        const counts = (g.offtarget_counts || []).map((n, i) => `${i}:${n}`).join(" ");
        tip.innerHTML = `<strong>#${g.rank}</strong> <span class="seq">${esc(g.sequence)}</span> ${esc(g.pam || "")}<br>` +
          `${esc(positionText(g))} (${esc(strandText(g.strand))}) · score ${fmtNum(g.score, 1)}<br>` +
          `MIT ${fmtNum(g.mit_specificity, 1)} · CFD ${fmtNum(g.cfd_specificity, 1)} · Rule Set 1 ${fmtNum(g.ruleset1, 2)}<br>` +
          `off-targets by mismatches ${esc(counts)}` +
          (guideFlags(g).length ? `<br>${esc(guideFlags(g).map((f) => f.text).join(", "))}` : "");
        tip.hidden = false;
        const box = fig.getBoundingClientRect();
        let left = e.clientX - box.left + 14;
        const width = tip.offsetWidth;
        if (left + width > box.width) left = Math.max(0, e.clientX - box.left - width - 14);
        tip.style.left = `${left}px`;
        tip.style.top = `${e.clientY - box.top + 14}px`;
      });
      root.addEventListener("mouseleave", () => {
        tip.hidden = true;
      });
      root.addEventListener("click", (e) => {
        const m = markOf(e);
        if (m) {
          const rank = Number(m.dataset.rank);
          this.openOfftargets(rank, 0, true);
          const row = this.rows.get(rank);
          if (row && !row.hidden) row.scrollIntoView({ block: "nearest" });
        }
      });
    }

    // --- the table ------------------------------------------------------------------------

    columns() {
      const cols = [
        { key: "rank", label: "#", title: "rank, 1 = best", num: true, get: (g) => g.rank },
        { key: "score", label: "Score", title: "the ranking score (specificity, 0–100)", num: true, get: (g) => g.score,
          html: (g) => `<span class="swatch" style="background:${scoreColor(g.score)}"></span>${fmtNum(g.score, 1)}` },
        { key: "sequence", label: "Sequence", title: "protospacer, 5′→3′", get: (g) => g.sequence, cls: "seq" },
        { key: "pam", label: "PAM", get: (g) => g.pam, cls: "seq" },
        { key: "position", label: "Position", title: "1-based, both ends included", get: (g) => g.start,
          cmp: (a, b) => String(a.chrom).localeCompare(String(b.chrom), "en", { numeric: true }) || a.start - b.start,
          text: positionText },
        { key: "strand", label: "Strand", get: (g) => g.strand, text: (g) => strandText(g.strand) },
        { key: "gc", label: "GC %", num: true, get: (g) => (g.gc == null ? null : g.gc * 100), digits: 0 },
        { key: "ruleset1", label: "Rule Set 1", title: "on-target efficiency (Doench 2014), 0–1", num: true, get: (g) => g.ruleset1, digits: 2 },
        { key: "mit", label: "MIT", title: "MIT specificity (Hsu 2013), 0–100", num: true, get: (g) => g.mit_specificity, digits: 1 },
        { key: "cfd", label: "CFD", title: "CFD specificity (Doench 2016), 0–100", num: true, get: (g) => g.cfd_specificity, digits: 1 },
      ];
      for (let m = 0; m <= this.k; m += 1) {
        cols.push({
          key: `mm${m}`, label: `${m} mm`, title: `off-targets with ${m} mismatch${m === 1 ? "" : "es"}`, num: true,
          get: (g) => (g.offtarget_counts ? g.offtarget_counts[m] : null), digits: -1,
        });
      }
      cols.push(
        { key: "total", label: "Total", title: "all off-targets", num: true, get: (g) => g.offtargets_total, digits: -1 },
        { key: "exonic", label: "In exons", title: "off-targets in exons", num: true, get: (g) => g.offtargets_exon, digits: -1 },
        { key: "flags", label: "Flags", get: (g) => guideFlags(g).map((f) => f.text).join(" "),
          html: (g) => guideFlags(g).map((f) => `<span class="flag ${f.cls}" title="${esc(f.title)}">${esc(f.text)}</span>`).join("") },
      );
      return cols;
    }

    cellHtml(col, g) {
      if (col.html) return col.html(g);
      if (col.text) return esc(col.text(g));
      const v = col.get(g);
      if (col.num) return col.digits === -1 ? fmtInt(v) : fmtNum(v, col.digits == null ? 0 : col.digits);
      return esc(v == null ? "—" : v);
    }

    renderTable() {
      const table = $("#guides");
      this.cols = this.columns();
      const head = this.cols.map((c) => {
        const sort = c.key === this.sort.key ? ` aria-sort="${this.sort.dir}"` : "";
        const title = c.title ? ` title="${esc(c.title)}"` : "";
        return `<th scope="col" data-key="${c.key}"${sort}${c.num ? ' class="num"' : ""}>` +
          `<button type="button" class="sort"${title}>${esc(c.label)}</button></th>`;
      }).join("");
      $("thead", table).innerHTML = `<tr>${head}</tr>`;
      const tbody = $("tbody", table);
      const html = this.guides.map((g) => {
        const cells = this.cols.map((c) => `<td${c.num ? ' class="num"' : c.cls ? ` class="${c.cls}"` : ""}>${this.cellHtml(c, g)}</td>`);
        return `<tr tabindex="0" data-rank="${g.rank}" aria-label="guide ${g.rank}, ${esc(g.sequence)}">${cells.join("")}</tr>`;
      }).join("");
      tbody.innerHTML = html;
      for (const tr of tbody.rows) this.rows.set(Number(tr.dataset.rank), tr);
      this.haystack = new Map(this.guides.map((g) => [g.rank, [
        g.sequence, g.pam, `${g.chrom}:${g.start}-${g.end}`, positionText(g), g.strand,
        guideFlags(g).map((f) => f.text).join(" "),
      ].join(" ").toLowerCase()]));

      $("thead", table).addEventListener("click", (e) => {
        const th = e.target.closest("th");
        if (!th) return;
        const key = th.dataset.key;
        const dir = this.sort.key === key && this.sort.dir === "ascending" ? "descending" : "ascending";
        this.sortBy(key, dir);
      });
      tbody.addEventListener("click", (e) => {
        const tr = e.target.closest("tr");
        if (tr) this.openOfftargets(Number(tr.dataset.rank), 0, true);
      });
      tbody.addEventListener("keydown", (e) => {
        const tr = e.target.closest("tr");
        if (!tr) return;
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          this.openOfftargets(Number(tr.dataset.rank), 0, true);
        } else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
          e.preventDefault();
          const next = e.key === "ArrowDown" ? tr.nextElementSibling : tr.previousElementSibling;
          if (next) next.focus();
        }
      });

      const mmSel = $("#filter-mm");
      mmSel.innerHTML = '<option value="-1">show all guides</option>' +
        Array.from({ length: this.k + 1 }, (_, m) => `<option value="${m}">hide guides with ${m === 0 ? "a 0" : `0–${m}`}-mismatch off-target${m === 0 ? "" : "s"}</option>`).join("");
      for (const id of ["#filter-text", "#filter-mm", "#filter-tttt"]) {
        let timer = null;
        $(id).addEventListener(id === "#filter-text" ? "input" : "change", () => {
          clearTimeout(timer);
          timer = setTimeout(() => this.applyFilter(), id === "#filter-text" ? 120 : 0);
        });
      }
      this.applyFilter();
    }

    sortBy(key, dir) {
      this.sort = { key, dir };
      for (const th of $$("#guides thead th")) {
        if (th.dataset.key === key) th.setAttribute("aria-sort", dir);
        else th.removeAttribute("aria-sort");
      }
      this.applyFilter();
    }

    visibleGuides() {
      const text = $("#filter-text").value.trim().toLowerCase();
      const mm = Number($("#filter-mm").value);
      const noTttt = $("#filter-tttt").checked;
      const words = text.split(/\s+/).filter(Boolean);
      return this.guides.filter((g) => {
        if (noTttt && g.tttt) return false;
        if (mm >= 0 && (g.offtarget_counts || []).slice(0, mm + 1).some((n) => n > 0)) return false;
        const hay = this.haystack.get(g.rank);
        return words.every((w) => hay.includes(w));
      });
    }

    applyFilter() {
      if (!this.cols) return;
      const col = this.cols.find((c) => c.key === this.sort.key) || this.cols[0];
      const sign = this.sort.dir === "descending" ? -1 : 1;
      const cmp = col.cmp || ((a, b) => {
        const va = col.get(a);
        const vb = col.get(b);
        if (typeof va === "number" && typeof vb === "number") return va - vb;
        return String(va).localeCompare(String(vb));
      });
      const shown = this.visibleGuides().sort((a, b) => {
        const va = col.get(a);
        const vb = col.get(b);
        const na = va == null || va === "";
        const nb = vb == null || vb === "";
        if (na !== nb) return na ? 1 : -1; // missing values last, either direction
        return (na ? 0 : sign * cmp(a, b)) || a.rank - b.rank;
      });
      const tbody = $("#guides tbody");
      const keep = new Set(shown.map((g) => g.rank));
      for (const [rank, tr] of this.rows) tr.hidden = !keep.has(rank);
      const frag = document.createDocumentFragment();
      for (const g of shown) frag.append(this.rows.get(g.rank));
      for (const [rank, tr] of this.rows) if (!keep.has(rank)) frag.append(tr);
      tbody.append(frag);
      for (const [rank, m] of this.marks) m.classList.toggle("filtered", !keep.has(rank));
      for (const [rank, m] of this.marks) m.style.display = keep.has(rank) ? "" : "none";
      $("#guide-count").textContent = `Showing ${fmtInt(shown.length)} of ${fmtInt(this.guides.length)} guides`;
    }

    // --- off-targets ----------------------------------------------------------------------

    bindOfftargets() {
      $("#offtargets-close").addEventListener("click", () => {
        $("#offtargets").hidden = true;
        const row = this.rows.get(this.selected);
        this.highlight(null);
        history.replaceState(null, "", location.pathname + location.search);
        if (row) row.focus();
      });
      $("#ot-prev").addEventListener("click", () => this.openOfftargets(this.selected, Math.max(0, this.otOffset - OFFTARGET_PAGE), false));
      $("#ot-next").addEventListener("click", () => this.openOfftargets(this.selected, this.otOffset + OFFTARGET_PAGE, false));
    }

    highlight(rank) {
      if (this.selected != null) {
        const old = this.rows.get(this.selected);
        if (old) {
          old.classList.remove("selected");
          old.removeAttribute("aria-current");
        }
        const m = this.marks.get(this.selected);
        if (m) m.classList.remove("selected");
      }
      this.selected = rank;
      if (rank == null) return;
      const row = this.rows.get(rank);
      if (row) {
        row.classList.add("selected");
        row.setAttribute("aria-current", "true");
      }
      const m = this.marks.get(rank);
      if (m) {
        m.classList.add("selected");
        m.parentNode.append(m); // on top
      }
    }

    /** The off-target's sequence with its mismatched bases in <mark>. */
    markMismatches(seq, positions) {
      const s = String(seq || "");
      const at = new Set((positions || []).map((p) => (this.pamSide === "5" ? s.length - p : p - 1)));
      let out = "";
      for (let i = 0; i < s.length; i += 1) {
        out += at.has(i) ? `<mark class="mm" title="mismatch">${esc(s[i])}</mark>` : esc(s[i]);
      }
      return out;
    }

    async openOfftargets(rank, offset, focus) {
      const g = this.byRank.get(rank);
      if (!g) return;
      this.highlight(rank);
      this.otOffset = offset;
      const panel = $("#offtargets");
      panel.hidden = false;
      history.replaceState(null, "", `${location.pathname}${location.search}#guide-${rank}`);
      $("#offtargets-heading").textContent = `Off-targets of guide #${rank}`;
      const classes = [
        `${fmtInt(g.offtargets_exon)} in exons`,
        `${fmtInt(g.offtargets_intron)} in introns`,
        `${fmtInt(g.offtargets_intergenic)} intergenic`,
      ].join(", ");
      const urls = browserUrls(this.assembly, g.chrom, g.start, g.end);
      $("#offtargets-summary").innerHTML =
        `<span class="seq">${esc(g.sequence)}</span> <span class="seq">${esc(g.pam || "")}</span> at ` +
        `${esc(positionText(g))} (${esc(strandText(g.strand))}) · ` +
        `${fmtInt(g.offtargets_total)} off-target${g.offtargets_total === 1 ? "" : "s"} with up to ${this.k} mismatches (${esc(classes)})` +
        (urls ? ` · <a href="${esc(urls.ucsc)}" target="_blank" rel="noopener">UCSC</a> · <a href="${esc(urls.ensembl)}" target="_blank" rel="noopener">Ensembl</a>` : "");
      const body = $("#offtargets-body");
      body.setAttribute("aria-busy", "true");
      if (!body.innerHTML) body.innerHTML = '<p class="status">Loading…</p>';
      if (focus) {
        panel.focus({ preventScroll: true });
        panel.scrollIntoView({ block: "nearest" });
      }
      const mine = ++this.otToken;
      const res = await api(`/api/v1/jobs/${enc(this.jobId)}/guides/${rank}/offtargets?offset=${offset}&limit=${OFFTARGET_PAGE}`);
      if (mine !== this.otToken) return;
      body.removeAttribute("aria-busy");
      if (!res.ok || !res.body) {
        body.innerHTML = `<p class="error" role="alert">The off-targets could not be loaded: ${esc(res.message)}</p>`;
        $("#offtargets-pager").hidden = true;
        return;
      }
      const page = res.body;
      const list = page.offtargets || [];
      const total = page.total != null ? page.total : g.offtargets_total;
      if (!total) {
        body.innerHTML = `<p>No off-targets with up to ${this.k} mismatches: this guide matches the genome only at its own site.</p>`;
        $("#offtargets-pager").hidden = true;
        return;
      }
      const rows = list.map((o, i) => {
        const ann = o.annotation || {};
        const cls = ann.class || "";
        const u = browserUrls(this.assembly, o.chrom, o.start, o.end);
        return `<tr><td class="num">${fmtInt(offset + i + 1)}</td>` +
          `<td>${esc(o.chrom)}:${fmtInt(o.start)}-${fmtInt(o.end)}</td>` +
          `<td>${esc(strandText(o.strand))}</td>` +
          `<td class="seq ot-seq" data-positions="${esc((o.mismatch_positions || []).join(","))}">${this.markMismatches(o.sequence, o.mismatch_positions)}</td>` +
          `<td class="seq">${esc(o.pam || "")}</td>` +
          `<td class="num">${fmtInt(o.mismatches)}</td>` +
          `<td class="num">${fmtNum(o.mit, 3)}</td>` +
          `<td class="num">${fmtNum(o.cfd, 3)}</td>` +
          `<td class="cls-${esc(cls)}">${esc(cls || "—")}</td>` +
          `<td>${esc((ann.genes || []).join(", ") || "—")}</td>` +
          `<td>${u ? `<a href="${esc(u.ucsc)}" target="_blank" rel="noopener">UCSC</a>` : ""}</td></tr>`;
      }).join("");
      body.innerHTML =
        `<p class="guide-line">Guide <span class="seq" id="ot-guide">${esc(page.sequence || g.sequence)}</span>; mismatched bases of each site are <mark class="mm">marked</mark> ` +
        `(positions counted from the PAM-distal end).</p>` +
        `<div class="table-wrap"><table class="data offtargets" id="offtarget-table">` +
        `<caption class="visually-hidden">Off-targets of guide ${rank}</caption>` +
        '<thead><tr><th scope="col" class="num">#</th><th scope="col">Position</th><th scope="col">Strand</th>' +
        '<th scope="col">Site</th><th scope="col">PAM</th><th scope="col" class="num">Mismatches</th>' +
        '<th scope="col" class="num">MIT</th><th scope="col" class="num">CFD</th><th scope="col">Location</th>' +
        `<th scope="col">Genes</th><th scope="col"><span class="visually-hidden">Browser</span></th></tr></thead><tbody>${rows}</tbody></table></div>`;
      const pager = $("#offtargets-pager");
      pager.hidden = total <= OFFTARGET_PAGE && offset === 0;
      $("#ot-prev").disabled = offset <= 0;
      $("#ot-next").disabled = offset + list.length >= total;
      $("#ot-range").textContent = `${fmtInt(list.length ? offset + 1 : 0)}–${fmtInt(offset + list.length)} of ${fmtInt(total)}`;
    }
  }

  // ------------------------------------------------------------------------------------------

  function init() {
    const data = pageData();
    const page = document.body.dataset.page;
    if (page === "design") initDesign(data);
    else if (page === "job") initJob(data);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
