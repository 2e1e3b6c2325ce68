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
    {
      // SARS-CoV-2 Wuhan-Hu-1: UCSC's wuhCor1 names its one sequence NC_045512v2; known by
      // its assembly name or by that sequence's accession (GenBank MN908947.3 is the same)
      names: [/^wuhcor1$/, /^asm985889v3$/],
      chroms: [/^(refseq:)?nc_045512(\.2|v2)?$/, /^(genbank:)?mn908947(\.3)?$/],
      label: "SARS-CoV-2 Wuhan-Hu-1 (wuhCor1)",
      ucsc: "wuhCor1",
      ensembl: null,
      chrom: () => ({ ucsc: "NC_045512v2", ensembl: null }),
    },
  ];

  /** The known assembly of a genome summary ({assembly, aliases, name}), or of a sequence
   * named `chrom` in it (an accession that names its assembly), or null. */
  function knownAssembly(genome, chrom) {
    const names = genome ? [genome.assembly].concat(genome.aliases || []).filter(Boolean) : [];
    const seq = chrom == null ? "" : String(chrom).trim().toLowerCase();
    for (const a of ASSEMBLIES) {
      if (names.some((n) => a.names.some((re) => re.test(String(n).trim().toLowerCase())))) return a;
      if (seq && (a.chroms || []).some((re) => re.test(seq))) return a;
    }
    return null;
  }

  /** UCSC (and, where it shows the assembly, Ensembl) links to chrom:start-end, or null. */
  function browserUrls(assembly, chrom, start, end) {
    if (!assembly || chrom == null || start == null || end == null) return null;
    const c = assembly.chrom(chrom);
    return {
      ucsc: `https://genome.ucsc.edu/cgi-bin/hgTracks?db=${assembly.ucsc}&position=${enc(`${c.ucsc}:${start}-${end}`)}`,
      ensembl: assembly.ensembl && c.ensembl
        ? `${assembly.ensembl}/Location/View?r=${enc(`${c.ensembl}:${start}-${end}`)}`
        : null,
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

    /** The example gene and region of the chosen genome as the fields' placeholders. */
    function updateExamples() {
      const ex = (genomes[genomeSel.value] || {}).example || {};
      fields.gene.input.placeholder = ex.gene ? `e.g. ${ex.gene}` : "a gene symbol or ID";
      fields.region.input.placeholder = ex.region ? `e.g. ${ex.region}` : "chromosome:start-end";
    }
    updateExamples();

    genomeSel.addEventListener("change", () => {
      updateNucleases();
      updateExamples();
      clearErrors();
      hideWarning();
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
      if (kind === "sequence" && /\bsequence\b|fasta/.test(text)) {
        setError(fields[kind].error, fields[kind].input, message);
        fields[kind].input.focus();
      } else if (/nuclease|site index|genome index|\bpam\b/.test(text)) {
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

    // A design with many guides (a long region) takes long and gives a big result: the form
    // counts the target's guides first (POST /api/v1/guides/count) and asks before going on.
    const warnBox = $("#large-warning");
    let pending = null; // {body, kind, value} the user is asked about

    function hideWarning() {
      warnBox.hidden = true;
      pending = null;
    }

    function refused(res, kind, value) {
      if (res.status === 0) {
        formErr.textContent = res.message;
        return;
      }
      placeError(res.message, kind);
      suggest(kind, res.body, value);
    }

    async function submitDesign(body, kind, value) {
      submit.disabled = true;
      const label = submit.dataset.label || submit.textContent;
      submit.dataset.label = label;
      submit.textContent = "Submitting…";
      const res = await api("/api/v1/guides/jobs", { json: body });
      if (res.ok && res.body && res.body.id) {
        location.assign(`/jobs/${enc(res.body.id)}`);
        return;
      }
      submit.disabled = false;
      submit.textContent = label;
      refused(res, kind, value);
    }

    for (const input of Object.values(fields).map((f) => f.input).concat([within, nucSel])) {
      input.addEventListener("input", hideWarning);
    }
    $("#large-go").addEventListener("click", () => {
      if (!pending) return;
      const { body, kind, value } = pending;
      hideWarning();
      submitDesign(body, kind, value);
    });
    $("#large-back").addEventListener("click", () => {
      const kind = pending ? pending.kind : targetKind();
      hideWarning();
      fields[kind].input.focus();
    });

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      combo.cancel();
      clearErrors();
      hideWarning();
      const kind = targetKind();
      const value = fields[kind].input.value.trim();
      if (!value) {
        const ex = (genomes[genomeSel.value] || {}).example || {};
        const what = {
          gene: `a gene name or ID${ex.gene ? ` (e.g. ${ex.gene})` : ""}`,
          region: `a region such as ${ex.region || "chr1:1000-2000"}`,
          sequence: "a DNA sequence",
        }[kind];
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
      submit.textContent = "Checking…";
      const count = await api("/api/v1/guides/count", { json: body });
      submit.disabled = false;
      submit.textContent = label;
      if (!count.ok) {
        refused(count, kind, value);
        return;
      }
      if (count.body && count.body.large) {
        pending = { body, kind, value };
        $("#large-warning-text").textContent =
          `This target has ${fmtInt(count.body.guides)} candidate guides, more than ` +
          `${fmtInt(count.body.large_above)}. Each is searched across the whole genome, so the ` +
          "design takes a while, and its result is shown a page of guides at a time. Design it " +
          "anyway, or choose a smaller target (a gene's exons, or a shorter region)?";
        warnBox.hidden = false;
        $("#large-go").focus();
        return;
      }
      submitDesign(body, kind, value);
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

  const MISSING_COLOUR = "#8a8a8a";
  /** Flags that put a guide in the last tier (drawn as red badges; the others amber). */
  const HARD_FLAGS = new Set(["offtarget_0mm", "tttt"]);
  const FLAG_TEXT = {
    offtarget_0mm: "0-mm off-target",
    offtarget_0mm_weak_pam: "0-mm at NAG/NGA",
    offtarget_1mm: "1-mm off-target",
    tttt: "TTTT",
    gc_low: "low GC",
    gc_high: "high GC",
    late_cds: "late in CDS",
    low_specificity: "low specificity",
    self_complementary: "self-compl.",
    variant: "variant",
  };
  const FLAG_TITLE = {
    offtarget_0mm: "a second perfect site next to the nuclease's own PAM (NGG for SpCas9)",
    tttt: "TTTT in the spacer ends U6 (Pol III) transcription",
    masked: "soft-masked (repeat) bases in the site",
  };

  /** The bin of `value` in a legend's bins (best first; a bin takes values ≥ its min). */
  function binOf(bins, value) {
    if (!Array.isArray(bins) || !bins.length || value == null || Number.isNaN(Number(value))) return null;
    return bins.find((b) => b.min == null || Number(value) >= b.min) || bins[bins.length - 1];
  }

  function tierBin(legend, tier) {
    const bins = legend.tier || [];
    return tier >= 1 && tier <= bins.length ? bins[tier - 1] : null;
  }

  function guideFlags(g, meanings) {
    const names = (g.flags || []).slice();
    if (g.tttt && !names.includes("tttt")) names.push("tttt");
    const flags = names.map((f) => ({
      name: f,
      cls: HARD_FLAGS.has(f) ? "hard" : "soft",
      text: FLAG_TEXT[f] || f.replace(/_/g, " "),
      title: (meanings && meanings[f]) || FLAG_TITLE[f] || f.replace(/_/g, " "),
    }));
    if (g.masked) flags.push({ name: "masked", cls: "info", text: "soft-masked", title: `${g.masked} soft-masked (repeat) base(s) in the site` });
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
      $("#new-design").href = `/guides?${back.toString()}`;
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
          showError(`<p><strong>No such job.</strong> ${esc(res.message)}</p><p><a href="/guides">Start a new design</a>.</p>`);
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

    /** The design's overview (no guides: those come a page at a time). */
    async function loadResult() {
      const resultUrl = job && typeof job.result_url === "string" ? job.result_url : `${jobUrl}/result`;
      if (job && job.kind && job.kind !== "guides.design") {
        statusLine.textContent = `Done${elapsed(job)}.`;
        showError(`<p>This job (${esc(job.kind)}) is not a guide design; ` +
          `<a href="${esc(resultUrl)}">its result as JSON</a>.</p>`);
        return;
      }
      const res = await api(`${jobUrl}/guides/overview`);
      if (!res.ok || !res.body) {
        showError(`<p><strong>The result could not be loaded:</strong> ${esc(res.message)}</p>`);
        return;
      }
      const ov = res.body;
      statusLine.textContent = `Done${elapsed(job)}: ${fmtInt(ov.guide_count)} guides.`;
      new ResultView(ov, jobId, genomes[ov.genome] || findGenome(genomes, ov.genome), data).show();
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
  // the result: gene model drawing, guide table (a page at a time), off-targets
  // ------------------------------------------------------------------------------------------

  /** Width of the drawing (SVG user units, about pixels) and its right margin. */
  const DRAW_W = 1000;
  const DRAW_R = 16;

  class ResultView {
    constructor(ov, jobId, genome, data) {
      this.ov = ov;
      this.jobId = jobId;
      this.base = `/api/v1/jobs/${enc(jobId)}/guides`;
      this.genome = genome || null;
      this.legend = ov.legend || {};
      this.meanings = (ov.ranking && ov.ranking.flags) || {};
      this.k = ov.max_mismatches != null ? ov.max_mismatches : 0;
      this.pamSide = String((ov.nuclease && ov.nuclease.pam_side) || "3");
      const n = ov.nuclease || {};
      this.scored = (ov.ranking && ov.ranking.efficiency_model != null) ||
        (n.pam === "NGG" && Number(n.guide_length) === 20 && String(n.pam_side) === "3");
      this.model = (ov.ranking && ov.ranking.efficiency_model) || (this.scored ? "rs3" : null);
      this.sort = { key: "rank", dir: "ascending" };
      this.offset = 0;
      const sizes = [50, 100, 250, 500];
      this.pageSize = sizes.includes(Number(data.page_size)) ? Number(data.page_size) : 100;
      this.total = ov.guide_count;
      this.matched = ov.guide_count;
      this.guides = [];
      this.byRank = new Map();
      this.rows = new Map();
      this.marks = new Map();
      this.selected = null;
      this.otToken = 0;
      this.pageToken = 0;
      this.trackToken = 0;
      const span = this.targetSpan();
      this.assembly = knownAssembly(this.genome, span ? span.chrom : null);
    }

    /** Genome-browser links for a position in the genome (its own assembly check per chrom). */
    urls(chrom, start, end) {
      return browserUrls(this.assembly || knownAssembly(this.genome, chrom), chrom, start, end);
    }

    async show() {
      $("#results").hidden = false;
      this.renderHeader();
      this.setupTable();
      this.bindOfftargets();
      const m = /^#guide-(\d+)$/.exec(location.hash);
      await Promise.all([this.loadPage(), this.renderModel()]);
      if (m) this.openOfftargets(Number(m[1]), 0, false);
    }

    // --- header: title, downloads, browser links, ranking rule ---------------------------

    renderHeader() {
      const ov = this.ov;
      const t = ov.target || {};
      const nuc = ov.nuclease || {};
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
      bits.push(`genome ${ov.genome}`);
      if (nuc.name) bits.push(`${nuc.name} (${nuc.pam})`);
      bits.push(`up to ${this.k} mismatches`);
      $("#job-summary").innerHTML = `${esc(bits.join(" · "))} · job <code>${esc(this.jobId)}</code>`;

      for (const fmt of ["tsv", "bed", "json"]) {
        const a = $(`#download-${fmt}`);
        const d = (ov.downloads || {})[fmt];
        if (!d) continue;
        a.href = d.url;
        a.setAttribute("download", d.filename);
        a.title = fmt === "json"
          ? `${d.filename}: the complete design, every off-target of every guide`
          : `${d.filename}: one ${fmt === "tsv" ? "row" : "line"} per guide`;
      }

      const box = $("#browser-links");
      box.innerHTML = "";
      const region = this.targetSpan();
      const urls = region && this.urls(region.chrom, region.start, region.end);
      if (urls) {
        box.innerHTML = `<span class="toolbar-label">View ${esc(region.chrom)}:${fmtInt(region.start)}-${fmtInt(region.end)} in</span>` +
          `<a class="button" id="link-ucsc" href="${esc(urls.ucsc)}" target="_blank" rel="noopener">UCSC</a>` +
          (urls.ensembl ? `<a class="button" id="link-ensembl" href="${esc(urls.ensembl)}" target="_blank" rel="noopener">Ensembl</a>` : "");
      } else if (t.type === "gene" || t.type === "region") {
        box.innerHTML = `<span class="hint">No genome-browser links: the assembly of ${esc(ov.genome)} ` +
          `${this.genome && this.genome.assembly ? `(${esc(this.genome.assembly)}) ` : ""}is not one UCSC and Ensembl are known to show here.</span>`;
      }

      const rule = $("#ranking-rule");
      const text = ov.ranking && typeof ov.ranking.rule === "string" ? ov.ranking.rule : "";
      rule.hidden = !text;
      rule.innerHTML = text ? `<strong>How guides are ranked.</strong> ${esc(text)}` : "";
    }

    /** {chrom, start, end} of the target in the genome (null for a pasted sequence). */
    targetSpan() {
      const t = this.ov.target || {};
      if (t.type !== "gene" && t.type !== "region") return null;
      const regions = t.regions || [];
      if (!regions.length) return null;
      return {
        chrom: regions[0].chrom,
        start: Math.min(...regions.map((r) => r.start)),
        end: Math.max(...regions.map((r) => r.end)),
      };
    }

    // --- the table: one page of guides from the server -----------------------------------

    binned(field, digits) {
      return (g) => {
        const v = g[field];
        if (v == null) return "—";
        const b = binOf(this.legend[field], v);
        const sw = b ? `<span class="swatch" style="background:${esc(b.colour)}" title="${esc(b.label)}"></span>` : "";
        return `${sw}${fmtNum(v, digits)}`;
      };
    }

    columns() {
      const effName = { rs3: "Rule Set 3 (DeWeirdt et al. 2022, Nat Commun 13:5255; about a z-score: 0 is an average guide)",
        ruleset1: "Rule Set 1 (Doench et al. 2014, Nat Biotechnol 32:1262; 0–1)" }[this.model] || String(this.model || "");
      const cols = [
        { key: "rank", label: "#", pin: 1, num: true, get: (g) => g.rank,
          title: "Rank: 1 is the best guide by the ranking rule above the table." },
        { key: "sequence", label: "Sequence", pin: 2, cls: "seq", get: (g) => g.sequence,
          title: "The protospacer (the guide's spacer), 5′→3′, without the PAM." },
        { key: "pam", label: "PAM", cls: "seq", get: (g) => g.pam,
          title: "The protospacer-adjacent motif beside it in the target." },
      ];
      if (this.scored) {
        cols.push(
          { key: "efficiency", label: "Efficiency", num: true, get: (g) => g.efficiency, html: this.binned("efficiency", 2),
            title: `On-target efficiency, how well the guide cuts its own site: ${effName}. Higher is better; the ranking uses it within a tier.` },
          { key: "mit_specificity", label: "MIT", num: true, get: (g) => g.mit_specificity, html: this.binned("mit_specificity", 0),
            title: "MIT specificity (Hsu et al. 2013, Nat Biotechnol 31:827) as CRISPOR gives it, 0–100: 100·100/(100 + Σ MIT off-target scores). Higher is more specific; under 50, check the off-targets (Haeussler et al. 2016)." },
          { key: "cfd_specificity", label: "CFD", num: true, get: (g) => g.cfd_specificity, html: this.binned("cfd_specificity", 0),
            title: "CFD specificity (Doench et al. 2016, Nat Biotechnol 34:184), 0–100: 100 / (1 + Σ CFD of the off-targets), as GuideScan defines it. Higher is more specific." },
        );
      } else {
        cols.push({ key: "score", label: "Specificity", num: true, get: (g) => g.score, html: this.binned("score", 0),
          title: "Count specificity (no CFD or MIT model for this nuclease), 0–100: 100 / (1 + Σ 4^−m) over the off-targets, m each one's mismatches. Higher is more specific." });
      }
      cols.push(
        { key: "flags", label: "Flags", sortable: false, get: () => null,
          html: (g) => guideFlags(g, this.meanings).map((f) => `<span class="flag ${f.cls}" title="${esc(f.title)}">${esc(f.text)}</span>`).join(""),
          title: "What the ranking holds against the guide (hover a badge for its meaning). Red: the guide will not work as asked (a second perfect site, or TTTT); amber: a warning." },
        { key: "tier", label: "Tier", num: true, get: (g) => g.tier,
          html: (g) => { const b = tierBin(this.legend, g.tier); return g.tier == null ? "—" : `<span class="tier" style="border-color:${esc(b ? b.colour : MISSING_COLOUR)}" title="${esc(b ? b.label : "")}">${esc(g.tier)}</span>`; },
          title: "Ranking tier: 1 no flag; 2 soft flags only; 3 a second perfect site or TTTT. Guides are ranked by tier first." },
        { key: "position", label: "Position", get: (g) => g.start, text: positionText,
          title: "Where the protospacer lies: chromosome:start-end, 1-based, both ends included (for a pasted sequence: in that sequence)." },
        { key: "strand", label: "Strand", get: (g) => g.strand, text: (g) => strandText(g.strand),
          title: "The strand the protospacer reads on." },
        { key: "exon", label: "Exon", num: true, get: (g) => g.exon,
          text: (g) => (g.exon == null ? "—" : g.exon_count != null ? `${g.exon}/${g.exon_count}` : String(g.exon)),
          title: "For a gene: the exon the guide cuts in, counted along the transcript (of how many)." },
        { key: "cds_percent", label: "CDS %", num: true, get: (g) => g.cds_percent, digits: 0,
          title: "Where the cut falls in the coding sequence, as % of its length from the start codon; a cut in the last 20 % may leave a working protein." },
        { key: "gc", label: "GC %", num: true, get: (g) => (g.gc == null ? null : g.gc * 100), digits: 0,
          title: "GC content of the protospacer; guides with very low or very high GC cut less well." },
      );
      if (this.scored) {
        cols.push(
          { key: "ruleset1", label: "Rule Set 1", num: true, get: (g) => g.ruleset1, html: this.binned("ruleset1", 2),
            title: "Rule Set 1 efficiency (Doench et al. 2014, Nat Biotechnol 32:1262), 0–1, from the 30-mer around the site." },
          { key: "crisprscan", label: "CRISPRscan", num: true, get: (g) => g.crisprscan, html: this.binned("crisprscan", 0),
            title: "CRISPRscan efficiency (Moreno-Mateos et al. 2015, Nat Methods 12:982), for guides transcribed in vitro (e.g. injected into zebrafish embryos)." },
          { key: "out_of_frame", label: "Out-of-frame", num: true, get: (g) => g.out_of_frame, html: this.binned("out_of_frame", 0),
            title: "Out-of-frame score (Bae et al. 2014, Nat Methods 11:705), 0–100: the share of microhomology-mediated deletions at the cut that shift the reading frame (a knock-out)." },
        );
      }
      for (let m = 0; m <= this.k; m += 1) {
        cols.push({
          key: `mm${m}`, label: `${m} mm`, num: true, digits: -1,
          get: (g) => (g.offtarget_counts ? g.offtarget_counts[m] : null),
          title: `Off-targets with ${m} mismatch${m === 1 ? "" : "es"} anywhere in the genome (exact count${this.scored ? "; NGG, NAG and NGA PAMs" : ""}).`,
        });
      }
      cols.push(
        { key: "offtargets_total", label: "Total", num: true, get: (g) => g.offtargets_total, digits: -1,
          title: `All off-targets with up to ${this.k} mismatches.` },
        { key: "offtargets_exon", label: "In exons", num: true, get: (g) => g.offtargets_exon, digits: -1,
          title: "Off-targets that lie in an exon of any gene: the most harmful." },
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

    setupTable() {
      const table = $("#guides");
      this.cols = this.columns();
      const head = this.cols.map((c) => {
        const cls = [c.num ? "num" : "", c.pin ? `pin pin${c.pin}` : ""].filter(Boolean).join(" ");
        const sort = c.key === this.sort.key ? ` aria-sort="${this.sort.dir}"` : "";
        const inner = c.sortable === false
          ? `<span class="nosort">${esc(c.label)}</span>`
          : `<button type="button" class="sort">${esc(c.label)}</button>`;
        return `<th scope="col" data-key="${c.key}" title="${esc(c.title)}"${sort}${cls ? ` class="${cls}"` : ""}>${inner}</th>`;
      }).join("");
      $("thead", table).innerHTML = `<tr>${head}</tr>`;
      const first = $("thead th.pin1", table);
      if (first) table.style.setProperty("--pin1", `${first.getBoundingClientRect().width}px`);

      $("thead", table).addEventListener("click", (e) => {
        const th = e.target.closest("th");
        if (!th || !e.target.closest("button")) return;
        const key = th.dataset.key;
        const dir = this.sort.key === key && this.sort.dir === "ascending" ? "descending" : "ascending";
        this.sortBy(key, dir);
      });
      const tbody = $("tbody", table);
      tbody.addEventListener("click", (e) => {
        const tr = e.target.closest("tr[data-rank]");
        if (tr) this.openOfftargets(Number(tr.dataset.rank), 0, true);
      });
      tbody.addEventListener("keydown", (e) => {
        const tr = e.target.closest("tr[data-rank]");
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
      for (const id of ["#filter-text", "#filter-mm", "#filter-tier", "#filter-tttt"]) {
        let timer = null;
        $(id).addEventListener(id === "#filter-text" ? "input" : "change", () => {
          clearTimeout(timer);
          timer = setTimeout(() => this.applyFilter(), id === "#filter-text" ? 250 : 0);
        });
      }
      const size = $("#page-size");
      size.value = String(this.pageSize);
      size.addEventListener("change", () => {
        this.pageSize = Number(size.value) || 100;
        this.offset = 0;
        this.loadPage();
      });
      $("#page-first").addEventListener("click", () => this.goTo(0));
      $("#page-prev").addEventListener("click", () => this.goTo(this.offset - this.pageSize));
      $("#page-next").addEventListener("click", () => this.goTo(this.offset + this.pageSize));
      $("#page-last").addEventListener("click", () => this.goTo(Math.floor(Math.max(0, this.matched - 1) / this.pageSize) * this.pageSize));
      this.renderTableLegend();
    }

    renderTableLegend() {
      const parts = [];
      const show = (title, bins) => {
        if (!Array.isArray(bins) || !bins.length) return;
        parts.push(`<span class="legend-group"><span class="legend-title">${esc(title)}:</span>` +
          bins.map((b) => `<span><span class="swatch" style="background:${esc(b.colour)}"></span>${esc(b.label)}</span>`).join("") + "</span>");
      };
      if (this.scored) {
        show(`Efficiency (${this.model === "ruleset1" ? "Rule Set 1" : "Rule Set 3"})`, this.legend.efficiency);
        show("Specificity (MIT, CFD)", this.legend.mit_specificity);
      } else {
        show("Specificity", this.legend.score);
      }
      $("#table-legend").innerHTML = parts.join("");
    }

    filterParams() {
      const p = new URLSearchParams();
      const text = $("#filter-text").value.trim();
      if (text) p.set("q", text);
      const mm = Number($("#filter-mm").value);
      if (mm >= 0) p.set("hide_mismatches", String(mm));
      if ($("#filter-tier").value) p.set("max_tier", $("#filter-tier").value);
      if ($("#filter-tttt").checked) p.set("exclude_flags", "tttt");
      return p;
    }

    sortBy(key, dir) {
      this.sort = { key, dir };
      for (const th of $$("#guides thead th")) {
        if (th.dataset.key === key) th.setAttribute("aria-sort", dir);
        else th.removeAttribute("aria-sort");
      }
      this.offset = 0;
      this.loadPage();
    }

    applyFilter() {
      this.offset = 0;
      this.loadPage();
      this.loadTrack();
    }

    goTo(offset) {
      const last = Math.floor(Math.max(0, this.matched - 1) / this.pageSize) * this.pageSize;
      this.offset = Math.max(0, Math.min(offset, last));
      this.loadPage().then(() => {
        const first = $("#guides tbody tr[data-rank]");
        $("#guides-scroll").scrollTop = 0;
        if (first) first.focus({ preventScroll: true });
      });
    }

    async loadPage() {
      const mine = ++this.pageToken;
      const p = this.filterParams();
      p.set("offset", String(this.offset));
      p.set("limit", String(this.pageSize));
      p.set("sort", this.sort.key);
      p.set("order", this.sort.dir);
      const table = $("#guides");
      table.setAttribute("aria-busy", "true");
      const res = await api(`${this.base}?${p.toString()}`);
      if (mine !== this.pageToken) return;
      table.removeAttribute("aria-busy");
      const tbody = $("tbody", table);
      if (!res.ok || !res.body) {
        tbody.innerHTML = `<tr><td colspan="${this.cols.length}" class="error" role="alert">The guides could not be loaded: ${esc(res.message)}</td></tr>`;
        return;
      }
      const page = res.body;
      this.total = page.total;
      this.matched = page.matched;
      if (page.matched > 0 && this.offset >= page.matched) {
        this.offset = Math.floor((page.matched - 1) / this.pageSize) * this.pageSize;
        await this.loadPage();
        return;
      }
      this.guides = page.guides || [];
      for (const g of this.guides) this.byRank.set(g.rank, g);
      this.rows = new Map();
      tbody.innerHTML = this.guides.map((g) => {
        const cells = this.cols.map((c) => {
          const cls = [c.num ? "num" : c.cls || "", c.pin ? `pin pin${c.pin}` : ""].filter(Boolean).join(" ");
          return `<td${cls ? ` class="${cls}"` : ""}>${this.cellHtml(c, g)}</td>`;
        });
        return `<tr tabindex="0" data-rank="${g.rank}" data-tier="${esc(g.tier == null ? "" : g.tier)}" aria-label="guide ${g.rank}, ${esc(g.sequence)}">${cells.join("")}</tr>`;
      }).join("") || `<tr><td colspan="${this.cols.length}" class="empty-row">No guide passes the filters.</td></tr>`;
      for (const tr of $$("tr[data-rank]", tbody)) this.rows.set(Number(tr.dataset.rank), tr);
      if (this.selected != null) this.highlight(this.selected);
      const a = this.guides.length ? this.offset + 1 : 0;
      const b = this.offset + this.guides.length;
      const all = this.matched === this.total ? "" : ` (${fmtInt(this.total)} in all)`;
      $("#guide-count").textContent = `Showing ${fmtInt(a)}–${fmtInt(b)} of ${fmtInt(this.matched)} guides${all}`;
      $("#page-first").disabled = $("#page-prev").disabled = this.offset <= 0;
      $("#page-next").disabled = $("#page-last").disabled = b >= this.matched;
      $("#guide-pager").dataset.pages = String(Math.max(1, Math.ceil(this.matched / this.pageSize)));
    }

    // --- the drawing ----------------------------------------------------------------------

    async renderModel() {
      const t = this.ov.target || {};
      let model = null;
      if (t.type === "gene") {
        const res = await api(`/api/v1/genomes/${enc(this.ov.genome)}/genes/${enc(t.gene_id || t.name)}`);
        if (res.ok && res.body) model = this.geneModel(res.body);
      }
      this.model_ = model || this.regionModel();
      await this.loadTrack();
    }

    geneModel(gene) {
      const span = (x) => (Array.isArray(x) ? { start: x[0] + 1, end: x[1] } : { start: x.start, end: x.end });
      let start = gene.start;
      let end = gene.end;
      if ((start == null || end == null) && gene.location) {
        const m = /:(\d[\d,]*)-(\d[\d,]*)/.exec(gene.location);
        if (m) [start, end] = [Number(m[1].replace(/,/g, "")), Number(m[2].replace(/,/g, ""))];
      }
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
      const t = this.ov.target || {};
      const regions = (t.regions || []).slice();
      const extent = this.ov.extent || [];
      const chrom = regions.length ? regions[0].chrom : extent.length ? extent[0].chrom : "";
      const mine = regions.filter((r) => String(r.chrom) === String(chrom));
      const start = mine.length ? Math.min(...mine.map((r) => r.start)) : 1;
      const end = mine.length ? Math.max(...mine.map((r) => r.end)) : t.length || 1;
      return {
        kind: t.type || "region",
        name: t.type === "sequence" || t.type === "fasta" ? (regions.length > 1 ? String(chrom) : "sequence") : `${chrom}`,
        chrom,
        start,
        end,
        strand: t.type === "gene" ? t.strand : null,
        exons: mine.length ? mine.map((r) => ({ start: r.start, end: r.end })) : [{ start, end }],
        cds: [],
      };
    }

    /** The drawn range: the target, widened to its guides and padded. */
    range(model) {
      let lo = model.start;
      let hi = model.end;
      for (const e of this.ov.extent || []) {
        if (String(e.chrom) !== String(model.chrom)) continue;
        lo = Math.min(lo, e.start);
        hi = Math.max(hi, e.end);
      }
      const padBp = Math.max(10, Math.round((hi - lo + 1) * 0.02));
      return { lo: Math.max(1, lo - padBp), hi: hi + padBp };
    }

    /** Left margin of the drawing: room for its longest label. */
    leftMargin(model) {
      const labels = ["+ strand", "− strand", String(model.chrom || ""), this.modelLabel(model)];
      return Math.min(170, Math.max(78, 10 + 7 * Math.max(...labels.map((s) => s.length))));
    }

    modelLabel(model) {
      const full = `${model.name}${model.strand ? ` (${strandText(model.strand)})` : ""}`;
      return full.length > 22 ? `${full.slice(0, 21)}…` : full;
    }

    async loadTrack() {
      const model = this.model_;
      if (!model) return;
      const mine = ++this.trackToken;
      const { lo, hi } = this.range(model);
      const L = this.leftMargin(model);
      const p = this.filterParams();
      p.set("chrom", String(model.chrom));
      p.set("start", String(lo));
      p.set("end", String(hi));
      p.set("bins", String(Math.round(DRAW_W - L - DRAW_R)));
      const res = await api(`${this.base}/track?${p.toString()}`);
      if (mine !== this.trackToken) return;
      const track = res.ok && res.body ? res.body : { marks: [], bins: null, matched: 0 };
      this.drawModel(model, track, lo, hi, L);
    }

    drawModel(model, track, lo, hi, L) {
      const host = $("#model-svg");
      host.innerHTML = "";
      this.marks = new Map();
      const W = DRAW_W;
      const R = DRAW_R;
      const x = (pos) => L + ((pos - lo) / Math.max(1, hi - lo)) * (W - L - R);
      const dense = !!track.bins;
      const marksData = track.marks || [];
      for (const g of marksData) if (!this.byRank.has(g.rank)) this.byRank.set(g.rank, g);

      // lanes: guides that would overlap on screen go to the next lane (per strand)
      const MAX_LANES = 6;
      const lanes = { "+": [], "-": [] };
      const placed = [];
      const sorted = marksData.slice().sort((a, b) => a.start - b.start || a.rank - b.rank);
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
      const densityH = 40;
      const plusH = dense ? densityH : Math.max(1, lanes["+"].length) * laneH;
      const minusH = dense ? densityH : Math.max(1, lanes["-"].length) * laneH;
      const top = 6;
      const plusBase = top + plusH;
      const geneY = plusBase + 22;
      const minusTop = geneY + 22;
      const axisY = minusTop + minusH + 14;
      const H = axisY + 30;

      const root = svg("svg", {
        viewBox: `0 0 ${W} ${H}`,
        role: "img",
        "aria-labelledby": "model-title model-desc",
        id: "model-drawing",
        "data-mode": dense ? "density" : "marks",
      });
      const title = svg("title", { id: "model-title" }, root);
      title.textContent = `${model.kind === "gene" ? "Gene model of" : "Target"} ${model.name}, ${model.chrom}:${fmtInt(model.start)}-${fmtInt(model.end)}`;
      const desc = svg("desc", { id: "model-desc" }, root);
      desc.textContent = dense
        ? `${fmtInt(track.matched)} guides drawn as their density (bars per pixel, coloured by tier): plus-strand guides above the ${model.kind === "gene" ? "gene" : "target"}, minus-strand guides below.`
        : `${placed.length} guides drawn as ticks coloured by tier: plus-strand guides above the ${model.kind === "gene" ? "gene" : "target"}, minus-strand guides below.`;

      const label = (y, text) => {
        const t = svg("text", { x: L - 8, y, class: "label", "text-anchor": "end", "dominant-baseline": "middle" }, root);
        t.textContent = text;
        return t;
      };
      label(top + plusH / 2, "+ strand");
      label(minusTop + minusH / 2, "− strand");

      // the gene: backbone (introns), exons, CDS, strand arrows
      const gx0 = x(model.start);
      const gx1 = x(model.end + 1);
      const gene = svg("g", { class: "gene" }, root);
      svg("line", { x1: gx0, x2: gx1, y1: geneY, y2: geneY, stroke: "#3b4350", "stroke-width": 2 }, gene);
      let chevron = null;
      if (model.strand === "+" || model.strand === "-") {
        const dir = model.strand === "+" ? 1 : -1;
        const chevronAt = [];
        for (let cx = gx0 + 12; cx < gx1 - 6; cx += 36) chevronAt.push(cx);
        const drawChevron = (cx, color) => {
          svg("polyline", {
            points: `${cx - 3 * dir},${geneY - 4} ${cx + 2 * dir},${geneY} ${cx - 3 * dir},${geneY + 4}`,
            fill: "none", stroke: color, "stroke-width": 1.5,
          }, gene);
        };
        for (const cx of chevronAt) drawChevron(cx, "#3b4350");
        const tip = dir > 0 ? gx1 + 10 : gx0 - 10;
        const tail = dir > 0 ? gx1 : gx0;
        svg("line", { x1: tail, x2: tip, y1: geneY, y2: geneY, stroke: "#3b4350", "stroke-width": 2 }, gene);
        svg("polygon", {
          points: `${tip + 6 * dir},${geneY} ${tip},${geneY - 5} ${tip},${geneY + 5}`,
          fill: "#3b4350",
        }, gene);
        chevron = { drawChevron, chevronAt };
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
      if (chevron) {
        for (const cx of chevron.chevronAt) if (inAny(cx, model.exons)) chevron.drawChevron(cx, "#ffffff");
      }
      const name = label(geneY, this.modelLabel(model));
      name.setAttribute("font-weight", 600);
      svg("title", {}, name).textContent = `${model.name}${model.strand ? ` (${strandText(model.strand)})` : ""}`;

      // guides: one tick each, or their density
      const colourOf = (tier) => {
        const b = tierBin(this.legend, tier);
        return b ? b.colour : MISSING_COLOUR;
      };
      if (dense) {
        this.drawDensity(root, track, { x, L, W, R, plusBase, minusTop, densityH, colourOf, lo, hi });
      } else {
        const marks = svg("g", { class: "guide-marks" }, root);
        for (const p of placed) {
          const g = p.g;
          const y = p.s === "+" ? plusBase - (p.lane + 1) * laneH + (laneH - tickH) : minusTop + p.lane * laneH;
          const m = svg("g", { class: "guide-mark", "data-rank": g.rank, "data-tier": g.tier == null ? "" : g.tier }, marks);
          const color = colourOf(g.tier);
          svg("rect", { x: p.x0, y, width: p.x1 - p.x0, height: tickH, fill: color, stroke: color, rx: 1 }, m);
          svg("title", {}, m).textContent = `#${g.rank} ${g.sequence} ${g.pam || ""} ${positionText(g)} (${strandText(g.strand)}) tier ${g.tier == null ? "—" : g.tier}`;
          this.marks.set(g.rank, m);
        }
      }

      // coordinate axis: tick labels that would collide (with each other or the margin) are left out
      const axis = svg("g", { class: "axis" }, root);
      svg("line", { x1: x(lo), x2: x(hi), y1: axisY, y2: axisY, stroke: "#3b4350" }, axis);
      const span = hi - lo;
      const raw = span / 8;
      const mag = 10 ** Math.floor(Math.log10(Math.max(1, raw)));
      const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw) || mag * 10;
      let lastRight = L - 4;
      for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
        svg("line", { x1: x(v), x2: x(v), y1: axisY, y2: axisY + 5, stroke: "#3b4350" }, axis);
        const text = fmtInt(v);
        const half = (text.length * 7.2) / 2;
        if (x(v) - half < lastRight + 6 || x(v) + half > W - 2) continue;
        const t = svg("text", { x: x(v), y: axisY + 18, "text-anchor": "middle", class: "tick-label" }, axis);
        t.textContent = text;
        lastRight = x(v) + half;
      }
      const chromLabel = svg("text", { x: L - 8, y: axisY + 18, "text-anchor": "end", class: "chrom-label" }, axis);
      chromLabel.textContent = model.chrom != null ? String(model.chrom) : "";
      host.append(root);

      $("#model-caption").textContent = model.kind === "gene"
        ? `Gene model of ${model.name} (${model.chrom}:${fmtInt(model.start)}-${fmtInt(model.end)}, ${strandText(model.strand)} strand): exons as boxes${hasCds ? " (coding parts taller)" : ""}, introns as lines, arrows give the direction of transcription; ${dense ? "bars give the guides' density" : "each tick is a guide"}.`
        : `${model.kind === "sequence" || model.kind === "fasta" ? `The pasted sequence${model.name !== "sequence" ? ` ${model.name}` : ""}` : `Region ${model.chrom}:${fmtInt(model.start)}-${fmtInt(model.end)}`}; ${dense ? "bars give the guides' density" : "each tick is a guide"}.`;
      const tiers = (this.legend.tier || []).map((b) => `<span><span class="swatch" style="background:${esc(b.colour)}"></span>${esc(b.label)}</span>`).join("");
      $("#legend").innerHTML = `<span>Guides by tier:</span>${tiers}` +
        (dense
          ? `<span>${fmtInt(track.matched)} guides are more than the drawing has pixels: each bar counts the guides in one pixel's width (${fmtInt(Math.round(track.bins.width))} bp), stacked by tier; hover it for the numbers.</span>`
          : "<span>Hover a tick for the guide, click it for its off-targets.</span>");
      this.bindMarks(root, track, { x, L, W, R, lo, hi });
      if (this.selected != null) this.highlight(this.selected);
    }

    /** Density bars: per bin (one pixel) and strand, guides stacked by tier (one path per tier). */
    drawDensity(root, track, geo) {
      const bins = track.bins;
      const n = bins.plus.length;
      let most = 1;
      for (const side of [bins.plus, bins.minus]) for (const row of side) most = Math.max(most, row.reduce((a, b) => a + b, 0));
      const unit = (geo.W - geo.L - geo.R) / n;
      const group = svg("g", { class: "guide-density" }, root);
      for (const [side, rows] of [["+", bins.plus], ["-", bins.minus]]) {
        const paths = [[], [], [], []];
        rows.forEach((row, i) => {
          let acc = 0;
          const x0 = geo.L + i * unit;
          row.forEach((count, tier) => {
            if (!count) return;
            const h0 = (acc / most) * geo.densityH;
            const h1 = ((acc + count) / most) * geo.densityH;
            acc += count;
            const y0 = side === "+" ? geo.plusBase - h1 : geo.minusTop + h0;
            paths[tier].push(`M${x0.toFixed(2)} ${y0.toFixed(2)}h${unit.toFixed(3)}v${(h1 - h0).toFixed(2)}h${(-unit).toFixed(3)}z`);
          });
        });
        paths.forEach((d, tier) => {
          if (!d.length) return;
          svg("path", { d: d.join(""), fill: geo.colourOf(tier < 3 ? tier + 1 : null), class: `density tier${tier + 1}`, "data-strand": side }, group);
        });
      }
      svg("rect", { x: geo.L, y: geo.plusBase - geo.densityH, width: geo.W - geo.L - geo.R, height: geo.minusTop + geo.densityH - (geo.plusBase - geo.densityH), fill: "transparent", class: "density-hit" }, group);
    }

    bindMarks(root, track, geo) {
      const tip = $("#tooltip");
      const fig = $("#model");
      const markOf = (e) => e.target.closest && e.target.closest(".guide-mark");
      const place = (e) => {
        tip.hidden = false;
        const box = fig.getBoundingClientRect();
        let left = e.clientX - box.left + 14;
        const width = tip.offsetWidth;
        if (left + width > box.width) left = Math.max(0, e.clientX - box.left - width - 14);
        tip.style.left = `${left}px`;
        tip.style.top = `${e.clientY - box.top + 14}px`;
      };
      root.addEventListener("mousemove", (e) => {
        if (track.bins) {
          if (!e.target.closest || !e.target.closest(".guide-density")) {
            tip.hidden = true;
            return;
          }
          const pt = root.createSVGPoint();
          pt.x = e.clientX;
          pt.y = e.clientY;
          const at = pt.matrixTransform(root.getScreenCTM().inverse());
          const n = track.bins.plus.length;
          const i = Math.floor((at.x - geo.L) / ((geo.W - geo.L - geo.R) / n));
          if (i < 0 || i >= n) {
            tip.hidden = true;
            return;
          }
          const a = Math.round(track.start + i * track.bins.width);
          const b = Math.round(track.start + (i + 1) * track.bins.width) - 1;
          const line = (name, row) => `${name}: ${fmtInt(row.reduce((s, c) => s + c, 0))} (tier 1: ${row[0]}, 2: ${row[1]}, 3: ${row[2]}${row[3] ? `, none: ${row[3]}` : ""})`;
          tip.innerHTML = `<strong>${esc(track.chrom)}:${fmtInt(a)}-${fmtInt(b)}</strong><br>` +
            `${esc(line("+ strand", track.bins.plus[i]))}<br>${esc(line("− strand", track.bins.minus[i]))}`;
          place(e);
          return;
        }
        const m = markOf(e);
        if (!m) {
          tip.hidden = true;
          return;
        }
        const g = this.byRank.get(Number(m.dataset.rank));
        if (!g) return;
        const counts = (g.offtarget_counts || []).map((c, i) => `${i}:${c}`).join(" ");
        const scores = this.scored
          ? `efficiency ${fmtNum(g.efficiency, 2)} · MIT ${fmtNum(g.mit_specificity, 0)} · CFD ${fmtNum(g.cfd_specificity, 0)}`
          : `specificity ${fmtNum(g.score, 0)}`;
        const flags = guideFlags(g, this.meanings).map((f) => f.text);
        tip.innerHTML = `<strong>#${g.rank}</strong> <span class="seq">${esc(g.sequence)}</span> ${esc(g.pam || "")}<br>` +
          `${esc(positionText(g))} (${esc(strandText(g.strand))}) · tier ${esc(g.tier == null ? "—" : g.tier)}<br>` +
          `${esc(scores)}<br>off-targets by mismatches ${esc(counts)}` +
          (flags.length ? `<br>${esc(flags.join(", "))}` : "");
        place(e);
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
          if (row) row.scrollIntoView({ block: "nearest" });
        }
      });
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
      for (const tr of this.rows.values()) {
        tr.classList.remove("selected");
        tr.removeAttribute("aria-current");
      }
      for (const m of this.marks.values()) m.classList.remove("selected");
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

    /** A guide's record: from a loaded page or drawing, else asked of the server by rank. */
    async guideOf(rank) {
      if (this.byRank.has(rank)) return this.byRank.get(rank);
      if (!(rank >= 1 && rank <= this.total)) return null;
      const res = await api(`${this.base}?sort=rank&offset=${rank - 1}&limit=1`);
      const g = res.ok && res.body && res.body.guides && res.body.guides[0];
      if (!g || g.rank !== rank) return null;
      this.byRank.set(rank, g);
      return g;
    }

    async openOfftargets(rank, offset, focus) {
      const g = await this.guideOf(rank);
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
      const t = this.ov.target || {};
      const inGenome = t.type === "gene" || t.type === "region";
      const urls = inGenome ? this.urls(g.chrom, g.start, g.end) : null;
      $("#offtargets-summary").innerHTML =
        `<span class="seq">${esc(g.sequence)}</span> <span class="seq">${esc(g.pam || "")}</span> at ` +
        `${esc(positionText(g))} (${esc(strandText(g.strand))}) · ` +
        `${fmtInt(g.offtargets_total)} off-target${g.offtargets_total === 1 ? "" : "s"} with up to ${this.k} mismatches (${esc(classes)})` +
        (urls ? ` · <a href="${esc(urls.ucsc)}" target="_blank" rel="noopener">UCSC</a>` +
          (urls.ensembl ? ` · <a href="${esc(urls.ensembl)}" target="_blank" rel="noopener">Ensembl</a>` : "") : "");
      const body = $("#offtargets-body");
      body.setAttribute("aria-busy", "true");
      if (!body.innerHTML) body.innerHTML = '<p class="status">Loading…</p>';
      if (focus) {
        panel.focus({ preventScroll: true });
        panel.scrollIntoView({ block: "nearest" });
      }
      const mine = ++this.otToken;
      const res = await api(`${this.base}/${rank}/offtargets?offset=${offset}&limit=${OFFTARGET_PAGE}`);
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
        const u = this.urls(o.chrom, o.start, o.end);
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
      const th = (label, title, num) => `<th scope="col"${num ? ' class="num"' : ""} title="${esc(title)}">${label}</th>`;
      body.innerHTML =
        `<p class="guide-line">Guide <span class="seq" id="ot-guide">${esc(page.sequence || g.sequence)}</span>; mismatched bases of each site are <mark class="mm">marked</mark> ` +
        `(positions counted from the PAM-distal end).</p>` +
        `<div class="table-wrap"><table class="data offtargets" id="offtarget-table">` +
        `<caption class="visually-hidden">Off-targets of guide ${rank}</caption>` +
        "<thead><tr>" +
        th("#", "Off-targets most dangerous first: fewest mismatches, then highest CFD.", true) +
        th("Position", "chromosome:start-end of the site's protospacer, 1-based, both ends included.") +
        th("Strand", "The strand the site reads on.") +
        th("Site", "The site's protospacer, 5′→3′, with the bases that differ from the guide marked.") +
        th("PAM", "The PAM beside the site (off-targets are searched next to every PAM the nuclease accepts).") +
        th("Mismatches", "Bases where the site differs from the guide.", true) +
        th("MIT", "MIT off-target score of the site (Hsu et al. 2013), 0–1: how likely it is cut.", true) +
        th("CFD", "CFD off-target score of the site (Doench et al. 2016), 0–1: how likely it is cut, from its mismatches and PAM.", true) +
        th("Location", "Whether the site lies in an exon, an intron or between genes.") +
        th("Genes", "Genes at the site.") +
        `<th scope="col" title="Open the site in the UCSC genome browser"><span class="visually-hidden">Browser</span></th></tr></thead><tbody>${rows}</tbody></table></div>`;
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
