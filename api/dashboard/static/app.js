// hybrid-nas dashboard: small helpers over the REST API (the session cookie authenticates).
const NAS = (() => {
  const TERMINAL = ["succeeded", "failed", "cancelled"];

  // the session's CSRF token: every request that may change something carries it (the cookie alone is refused)
  const CSRF = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  async function api(path, options = {}) {
    const headers = { ...(options.headers || {}), "X-CSRF-Token": CSRF };
    const r = await fetch(path, { credentials: "same-origin", ...options, headers });
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    return { ok: r.ok, status: r.status, body };
  }

  function num(v) {
    if (v === undefined || v === null) return "";
    return Math.abs(v) >= 100 ? Math.round(v).toLocaleString() : Number(v).toFixed(4);
  }

  function setStatus(el, status) {
    el.textContent = status;
    el.className = el.className.replace(/st-\w+/g, "").trim() + " st-" + status;
  }

  // ---- searches list: live progress bars ---------------------------------------------------
  function liveSearchList() {
    const tick = async () => {
      const { ok, body } = await api("/api/v1/searches?limit=200");
      if (!ok) return;
      for (const s of body.items) {
        const row = document.querySelector(`tr[data-id="${s.id}"]`);
        if (!row) continue;
        setStatus(row.querySelector(".status"), s.status);
        row.querySelector(".phase").textContent = s.phase;
        row.querySelector(".progress div").style.width = (100 * s.progress).toFixed(1) + "%";
        row.querySelector(".best").textContent = s.best && s.best.accuracy != null ? s.best.accuracy.toFixed(4) : "";
      }
    };
    setInterval(tick, 1500);
  }

  // ---- new search form -----------------------------------------------------------------------
  function showErrors(form, detail, errors) {
    form.querySelectorAll(".field-error").forEach((e) => (e.textContent = ""));
    let placed = false;
    const put = (field, msg) => {
      const el = form.querySelector(`[data-error="${field}"]`);
      if (el) { el.textContent = msg; placed = true; }
    };
    for (const e of errors || []) {
      const loc = e.loc.filter((p) => p !== "body");
      if (loc.length) put(String(loc[0]), loc.join(".") + ": " + e.msg);
    }
    if (!placed && detail) {
      const field = detail.split(/[.:]/)[0];
      put(field, detail);
    }
    document.getElementById("form-error").textContent = placed ? "Please fix the fields marked below." : detail;
  }

  async function submitSearch(event) {
    event.preventDefault();
    const form = event.target;
    const f = new FormData(form);
    const config = {
      space: f.get("space"),
      objectives: f.getAll("objectives"),
      constraints: {},
      train: f.get("steps") ? { steps: Number(f.get("steps")) } : {},
      budget: { minutes: f.get("minutes") ? Number(f.get("minutes")) : null },
      search: { evaluations: Number(f.get("evaluations")), strategy: f.get("strategy") },
      finalize: { enabled: f.get("finalize") === "on" },
      trust: f.get("trust") ? { enabled: f.get("trust") === "on" } : {},
    };
    for (const k of ["accuracy", "macs", "params"]) {
      const v = f.get("c_" + k);
      if (v !== null && v !== "") config.constraints[k] = Number(v);
    }
    if (f.get("hardware")) config.hardware = f.get("hardware");
    if (f.get("dataset") === "npz") {
      const file = form.querySelector('input[type="file"]').files[0];
      if (!file) { showErrors(form, "dataset: choose an .npz file to upload", []); return false; }
      const up = new FormData();
      up.append("file", file);
      const r = await api("/api/v1/datasets", { method: "POST", body: up });
      if (!r.ok) { showErrors(form, "dataset: " + r.body.detail, []); return false; }
      config.dataset = { name: "npz", path: r.body.path };
    } else {
      config.dataset = { name: "digits" };
    }
    const name = encodeURIComponent(f.get("name") || "");
    const r = await api(`/api/v1/searches?name=${name}`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(config),
    });
    if (r.status === 202) { window.location.href = "/searches/" + r.body.id; return false; }
    showErrors(form, r.body ? r.body.detail : "the server refused the search", r.body ? r.body.errors : []);
    return false;
  }

  async function cancel(id) {
    const r = await api(`/api/v1/searches/${id}/cancel`, { method: "POST" });
    if (r.ok) setStatus(document.getElementById("status"), r.body.cancel_requested ? "running" : r.body.status);
    document.getElementById("cancel").disabled = true;
  }

  // ---- Pareto utilities (2 objectives, both minimized) ------------------------------------------
  function minimized(metrics, name) { return name === "accuracy" ? 1 - metrics.accuracy : metrics[name]; }

  function hypervolume2d(points, ref) {
    const pts = points.filter((p) => p[0] < ref[0] && p[1] < ref[1]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let volume = 0, bestY = ref[1];
    for (const [x, y] of pts) if (y < bestY) { volume += (ref[0] - x) * (bestY - y); bestY = y; }
    return volume;
  }

  // ---- search page --------------------------------------------------------------------------------
  function searchPage(id, objectives) {
    const cands = new Map();  // arch_id -> candidate, in arrival order
    let front = new Set();
    const loss = { x: [], y: [] };
    let dirty = true, status = document.getElementById("status").textContent;
    const table = { sort: "accuracy", order: "desc", offset: 0, limit: 50 };

    async function loadCandidates() {
      for (let offset = 0; ; offset += 1000) {
        const r = await api(`/api/v1/searches/${id}/candidates?sort=created_at&order=asc&limit=1000&offset=${offset}`);
        if (!r.ok) return;
        for (const c of r.body.items) { cands.set(c.arch_id, c); if (c.on_front) front.add(c.arch_id); }
        if (offset + 1000 >= r.body.total) break;
      }
      dirty = true;
    }

    function drawPareto() {
      const xa = document.getElementById("x-axis").value, ya = document.getElementById("y-axis").value;
      const all = [...cands.values()].filter((c) => c.metrics[xa] !== undefined && c.metrics[ya] !== undefined);
      const on = all.filter((c) => front.has(c.arch_id)), off = all.filter((c) => !front.has(c.arch_id));
      const trace = (list, name, color, size) => ({
        x: list.map((c) => c.metrics[xa]), y: list.map((c) => c.metrics[ya]), customdata: list.map((c) => c.arch_id),
        mode: "markers", type: "scatter", name,
        marker: { color, size }, hovertemplate: `${xa} %{x}<br>${ya} %{y}<extra>%{customdata}</extra>`,
      });
      const el = document.getElementById("pareto");
      Plotly.react(el, [trace(off, "candidates", "#b8b8b8", 6), trace(on, "front", "#d62728", 10)], {
        margin: { t: 10, r: 10 }, xaxis: { title: xa }, yaxis: { title: ya }, legend: { orientation: "h" },
      }, { displayModeBar: false, responsive: true });
      if (!el.dataset.bound) {
        el.on("plotly_click", (ev) => { window.location.href = `/searches/${id}/candidates/${ev.points[0].customdata}`; });
        el.dataset.bound = "1";
      }
    }

    function drawHypervolume() {
      const xa = objectives.find((o) => o !== "accuracy") || "macs";
      const list = [...cands.values()].filter((c) => c.metrics[xa] !== undefined && c.metrics.accuracy !== undefined);
      if (!list.length) return;
      const ref = [1.0, 1.1 * Math.max(...list.map((c) => c.metrics[xa]))];
      let frontPts = [];
      const hv = [];
      for (const c of list) {
        const p = [minimized(c.metrics, "accuracy"), c.metrics[xa]];
        if (!frontPts.some((q) => q[0] <= p[0] && q[1] <= p[1])) {
          frontPts = frontPts.filter((q) => !(p[0] <= q[0] && p[1] <= q[1])).concat([p]);
        }
        hv.push(hypervolume2d(frontPts, ref) / (ref[0] * ref[1]));
      }
      Plotly.react("hv-plot", [{ y: hv, x: hv.map((_, i) => i + 1), mode: "lines", line: { color: "#1f77b4" } }], {
        margin: { t: 10, r: 10 }, xaxis: { title: "evaluations" }, yaxis: { title: `hypervolume (error, ${xa})` },
      }, { displayModeBar: false, responsive: true });
    }

    function drawLoss() {
      Plotly.react("loss", [{ x: loss.x, y: loss.y, mode: "lines", line: { color: "#2ca02c" } }], {
        margin: { t: 10, r: 10 }, xaxis: { title: "step" }, yaxis: { title: "loss (largest subnet)" },
      }, { displayModeBar: false, responsive: true });
    }

    async function drawTable() {
      const q = `sort=${table.sort}&order=${table.order}&limit=${table.limit}&offset=${table.offset}`;
      const r = await api(`/api/v1/searches/${id}/candidates?${q}`);
      if (!r.ok) return;
      document.getElementById("cand-count").textContent = `${r.body.total}`;
      document.getElementById("page").textContent =
        `${Math.min(r.body.total, table.offset + 1)}–${Math.min(r.body.total, table.offset + table.limit)} of ${r.body.total}`;
      const tbody = document.querySelector("#candidates tbody");
      tbody.innerHTML = "";
      for (const c of r.body.items) {
        const tr = document.createElement("tr");
        const link = `<a href="/searches/${id}/candidates/${c.arch_id}">${c.arch_id.slice(0, 12)}</a>`;
        tr.innerHTML = `<td>${link}</td><td>${num(c.metrics.accuracy)}</td><td>${num(c.metrics.macs)}</td>` +
          `<td>${num(c.metrics.params)}</td><td>${num(c.metrics.latency_ms)}</td><td>${c.generation}</td>` +
          `<td>${c.on_front ? "●" : ""}</td>`;
        tbody.appendChild(tr);
      }
    }

    document.querySelectorAll("#candidates th[data-sort]").forEach((th) => th.addEventListener("click", () => {
      table.order = table.sort === th.dataset.sort && table.order === "desc" ? "asc" : "desc";
      table.sort = th.dataset.sort; table.offset = 0; drawTable();
    }));
    document.getElementById("prev").onclick = () => { table.offset = Math.max(0, table.offset - table.limit); drawTable(); };
    document.getElementById("next").onclick = () => { table.offset += table.limit; drawTable(); };
    ["x-axis", "y-axis"].forEach((s) => document.getElementById(s).addEventListener("change", () => (dirty = true)));

    const events = new EventSource(`/api/v1/searches/${id}/events`);
    events.addEventListener("progress", (e) => {
      const d = JSON.parse(e.data);
      document.getElementById("progress").style.width = (100 * d.progress).toFixed(1) + "%";
      document.getElementById("phase").textContent = d.phase;
      if (d.phase === "train" && d.metrics && d.metrics.loss !== undefined) { loss.x.push(d.step); loss.y.push(d.metrics.loss); dirty = true; }
    });
    events.addEventListener("candidate", (e) => {
      const c = JSON.parse(e.data);
      if (!cands.has(c.arch_id)) { cands.set(c.arch_id, { ...c, on_front: false }); dirty = true; }
    });
    events.addEventListener("front", (e) => { front = new Set(JSON.parse(e.data).arch_ids); dirty = true; });
    events.addEventListener("status", (e) => {
      const d = JSON.parse(e.data);
      status = d.status;
      setStatus(document.getElementById("status"), d.status);
      if (d.attempt) document.getElementById("attempt").textContent = d.attempt;
      if (d.error) document.getElementById("search-error").textContent = d.error;
      document.getElementById("cancel").disabled = TERMINAL.includes(d.status);
      if (TERMINAL.includes(d.status)) document.getElementById("eta").textContent = "–";
    });
    events.addEventListener("end", async () => {
      events.close();
      const r = await api(`/api/v1/searches/${id}`);
      if (r.ok) {
        document.getElementById("progress").style.width = (100 * r.body.progress).toFixed(1) + "%";
        document.getElementById("phase").textContent = r.body.phase;
        if (r.body.hypervolume != null) document.getElementById("hv").textContent = r.body.hypervolume.toFixed(4);
      }
      await loadCandidates(); drawTable();
    });

    setInterval(async () => {
      if (dirty) { dirty = false; drawPareto(); drawLoss(); drawHypervolume(); }
    }, 700);
    setInterval(async () => {
      if (TERMINAL.includes(status)) return;
      const r = await api(`/api/v1/searches/${id}`);
      if (r.ok) document.getElementById("eta").textContent = r.body.eta_seconds != null ? Math.round(r.body.eta_seconds) + " s" : "–";
      drawTable();
    }, 3000);
    loadCandidates().then(drawTable);
  }

  // ---- compare -----------------------------------------------------------------------------------------
  function compareSubmit(event) {
    event.preventDefault();
    const ids = [...document.querySelectorAll("#compare-form input[type=checkbox]:checked")].map((i) => i.value);
    window.location.href = "/compare?ids=" + ids.join(",");
    return false;
  }

  async function comparePage(ids) {
    const xa = document.getElementById("x-axis").value;
    const traces = [];
    for (const id of ids) {
      const r = await api(`/api/v1/searches/${id}/front`);
      const s = await api(`/api/v1/searches/${id}`);
      if (!r.ok) continue;
      const pts = r.body.filter((c) => c.metrics[xa] !== undefined).sort((a, b) => a.metrics[xa] - b.metrics[xa]);
      traces.push({ x: pts.map((c) => c.metrics[xa]), y: pts.map((c) => c.metrics.accuracy), mode: "lines+markers",
                    name: (s.ok && s.body.name) || id.slice(0, 8), line: { shape: "hv" } });
    }
    Plotly.react("compare-plot", traces, { xaxis: { title: xa }, yaxis: { title: "accuracy" }, margin: { t: 10 } },
                 { displayModeBar: false, responsive: true });
  }

  return { liveSearchList, submitSearch, cancel, searchPage, compareSubmit, comparePage };
})();
