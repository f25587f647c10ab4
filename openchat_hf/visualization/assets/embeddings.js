/* Conversation-embedding explorer: 3D scatter coloured by cluster, click a point to read its conversation. */
"use strict";
(function () {
  const OC = window.OC;
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1",
    "#636363"];
  const MAX_RESULTS = 100;
  const timings = { scriptStart: performance.now() };
  const gd = document.getElementById("plot");
  const initial = OC.readData("oc-data");
  timings.dataParsed = performance.now();
  const state = { data: null, lower: null, clusters: [], searchTrace: 0, selectedTrace: 0, matches: [] };

  function banner(message, isError) {
    const node = document.getElementById("banner");
    node.textContent = message || "";
    node.classList.toggle("hidden", !message);
    node.classList.toggle("error", !!isError);
  }

  function validate(data) {
    if (!data || typeof data !== "object") throw new Error("not a JSON object");
    const { text, embedding, color } = data;
    if (!Array.isArray(text) || !Array.isArray(embedding) || !Array.isArray(color)) {
      throw new Error("expected {text: [...], embedding: [[x, y, z], ...], color: [...]}");
    }
    if (text.length !== embedding.length || text.length !== color.length) {
      throw new Error(`text, embedding and color lengths differ (${text.length}, ${embedding.length}, ${color.length})`);
    }
    embedding.forEach((p, i) => {
      if (!Array.isArray(p) || p.length !== 3 || !p.every((v) => typeof v === "number" && isFinite(v))) {
        throw new Error(`embedding[${i}] is not three numbers`);
      }
    });
    text.forEach((t, i) => { if (typeof t !== "string") throw new Error(`text[${i}] is not a string`); });
    color.forEach((c, i) => { if (!Number.isInteger(c) || c < 0) throw new Error(`color[${i}] is not a cluster number`); });
  }

  function flatText(text) {
    let flat = text;
    for (const mt of Object.values(initial.model_types)) flat = flat.split(mt.eot).join(" | ");
    return flat.replace(/\s+/g, " ").trim();
  }

  function preview(text) {
    const flat = flatText(text.slice(0, 400));
    const short = flat.length > 160 ? flat.slice(0, 160) + "…" : flat;
    return OC.escapeLabel(short).replace(/(.{60}\S*)\s/g, "$1<br>");
  }

  function buildTraces(data) {
    const byCluster = new Map();
    data.color.forEach((c, i) => {
      if (!byCluster.has(c)) byCluster.set(c, []);
      byCluster.get(c).push(i);
    });
    state.clusters = [...byCluster.keys()].sort((a, b) => a - b).map((c) => ({ id: c, points: byCluster.get(c) }));
    const traces = state.clusters.map((cluster, n) => ({
      type: "scatter3d",
      mode: "markers",
      name: `Cluster ${cluster.id} (${cluster.points.length})`,
      x: cluster.points.map((i) => data.embedding[i][0]),
      y: cluster.points.map((i) => data.embedding[i][1]),
      z: cluster.points.map((i) => data.embedding[i][2]),
      customdata: cluster.points,
      hovertext: cluster.points.map((i) => preview(data.text[i])),
      hovertemplate: "#%{customdata}: %{hovertext}<extra>" + `cluster ${cluster.id}` + "</extra>",
      marker: { size: 3, color: PALETTE[n % PALETTE.length], opacity: 0.8 },
    }));
    state.searchTrace = traces.length;
    traces.push({ type: "scatter3d", mode: "markers", name: "search matches", x: [], y: [], z: [], customdata: [],
      hoverinfo: "skip", marker: { size: 7, color: "#000", symbol: "diamond-open", opacity: 1 } });
    state.selectedTrace = traces.length;
    traces.push({ type: "scatter3d", mode: "markers", name: "selected", x: [], y: [], z: [], customdata: [],
      hoverinfo: "skip", marker: { size: 10, color: "rgba(0,0,0,0)", line: { color: "#cf222e", width: 4 } } });
    return traces;
  }

  function renderLegend() {
    const legend = document.getElementById("legend");
    legend.replaceChildren(OC.el("div", { class: "meta" }, `${state.clusters.length} clusters · click to hide / show`));
    state.clusters.forEach((cluster, n) => {
      const chip = OC.el("span", { class: "chip", "data-cluster": String(cluster.id), role: "button" });
      const swatch = OC.el("span", { class: "swatch" });
      swatch.style.background = PALETTE[n % PALETTE.length];
      chip.append(swatch, document.createTextNode(`Cluster ${cluster.id} (${cluster.points.length})`));
      chip.addEventListener("click", () => {
        const visible = chip.classList.toggle("off") ? "legendonly" : true;
        Plotly.restyle(gd, { visible: visible }, [n]);
      });
      legend.appendChild(chip);
    });
  }

  function showConversation(index) {
    const data = state.data;
    if (!Number.isInteger(index) || index < 0 || index >= data.text.length) return false;
    const pane = document.getElementById("conversation");
    const head = OC.el("div", { class: "conv-head" },
      `Conversation #${index}` + (data.ids ? ` · id ${data.ids[index]}` : "") + ` · cluster ${data.color[index]}`);
    const turns = OC.parseConversation(data.text[index], initial.model_types, data.model_type || initial.model_type);
    const body = OC.el("div", { class: "conversation", "data-index": String(index) });
    OC.renderTurns(turns, body);
    pane.replaceChildren(head, body);
    pane.scrollTop = 0;
    const p = data.embedding[index];
    Plotly.restyle(gd, { x: [[p[0]]], y: [[p[1]]], z: [[p[2]]], customdata: [[index]] }, [state.selectedTrace]);
    state.selected = index;
    return true;
  }

  function search(query) {
    const data = state.data;
    const q = String(query || "").trim().toLowerCase();
    const status = document.getElementById("search-status");
    const results = document.getElementById("results");
    state.matches = [];
    if (q) {
      if (!state.lower) state.lower = data.text.map((t) => t.toLowerCase());
      state.lower.forEach((t, i) => { if (t.includes(q)) state.matches.push(i); });
    }
    const m = state.matches;
    Plotly.restyle(gd, {
      x: [m.map((i) => data.embedding[i][0])], y: [m.map((i) => data.embedding[i][1])],
      z: [m.map((i) => data.embedding[i][2])], customdata: [m],
    }, [state.searchTrace]);
    status.textContent = q ? `${m.length} match${m.length === 1 ? "" : "es"}` : "";
    results.classList.toggle("hidden", !q);
    const list = OC.el("ol");
    m.slice(0, MAX_RESULTS).forEach((i) => {
      const flat = flatText(data.text[i]);
      const at = Math.max(0, flat.toLowerCase().indexOf(q) - 40);
      const item = OC.el("li", { "data-index": String(i) }, `#${i}: ${at ? "…" : ""}${flat.slice(at, at + 140)}…`);
      item.addEventListener("click", () => showConversation(i));
      list.appendChild(item);
    });
    results.replaceChildren(list);
    if (m.length > MAX_RESULTS) results.appendChild(OC.el("div", { class: "meta" }, `first ${MAX_RESULTS} shown`));
    return m.slice();
  }

  function load(data, origin) {
    validate(data);
    state.data = data;
    state.lower = null;
    document.getElementById("title").textContent = data.title || `Conversation embeddings (${origin})`;
    const meta = data.meta && data.meta.description ? data.meta.description + " " : "";
    document.getElementById("meta").textContent =
      `${data.text.length} conversations from ${data.meta && data.meta.source ? data.meta.source : origin}. ${meta}`;
    const layout = {
      margin: { l: 0, r: 0, t: 0, b: 0 },
      showlegend: false,
      uirevision: origin,
      scene: { xaxis: { title: { text: "" } }, yaxis: { title: { text: "" } }, zaxis: { title: { text: "" } } },
    };
    const config = { responsive: true, displaylogo: false, modeBarButtonsToAdd: [OC.downloadSvgButton()] };
    const traces = buildTraces(data);
    timings.tracesBuilt = performance.now();
    const rendered = Plotly.react(gd, traces, layout, config).then(() => {
      window.ocViz.renderedAt = timings.rendered = performance.now();
    });
    if (!state.clickBound) {
      gd.on("plotly_click", onClick);
      state.clickBound = true;
    }
    renderLegend();
    document.getElementById("conversation").replaceChildren(
      OC.el("p", { class: "meta" }, "Click a point (or a search result) to read its conversation."));
    const query = document.getElementById("search").value;
    if (query) search(query);
    return rendered;
  }

  function onClick(event) {
    const point = event && event.points && event.points[0];
    if (!point) return;
    const trace = gd.data[point.curveNumber];
    const index = trace && trace.customdata ? trace.customdata[point.pointNumber] : undefined;
    showConversation(typeof index === "number" ? index : Number(index));
  }

  function loadFile(file) {
    const reader = new FileReader();
    reader.onload = () => {
      try {
        const data = JSON.parse(reader.result);
        load(data, file.name);
        banner(`Loaded ${file.name}.`, false);
      } catch (err) {
        banner(`${file.name} is not a visualizer.json: ${err.message}`, true);
      }
    };
    reader.readAsText(file);
  }

  gd.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("drop-target"); });
  document.addEventListener("dragleave", () => document.body.classList.remove("drop-target"));
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    document.body.classList.remove("drop-target");
    const file = e.dataTransfer && e.dataTransfer.files[0];
    if (file) loadFile(file);
  });
  document.getElementById("file").addEventListener("change", (e) => {
    if (e.target.files[0]) loadFile(e.target.files[0]);
  });
  let timer = null;
  document.getElementById("search").addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => search(e.target.value), 150);
  });

  window.ocViz = { state, load, search, showConversation, renderedAt: null, timings };
  try {
    load(initial, "page");
  } catch (err) {
    banner(`The page data is invalid: ${err.message}`, true);
  }
})();
