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
  const state = { data: null, lower: null, clusters: [], groups: [], attrs: {}, mode: "cluster", searchTrace: 0,
    selectedTrace: 0, matches: [], selected: null };

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

  const SEQUENTIAL = ["#440154", "#414487", "#2a788e", "#22a884", "#7ad151", "#fde725"];
  const TURN_BUCKETS = [[1, 1], [2, 2], [3, 3], [4, 4], [5, 9], [10, Infinity]];

  function clusterTerms(id) {
    const terms = ((state.data.meta || {}).cluster_terms || {})[String(id)];
    return Array.isArray(terms) ? terms.filter((t) => typeof t === "string") : [];
  }

  function clusterName(id) {
    const terms = clusterTerms(id);
    return terms.length ? `${id}: ${terms.join(", ")}` : `Group ${id}`;
  }

  function turnsOf(index) {
    return OC.parseConversation(state.data.text[index], initial.model_types, state.data.model_type || initial.model_type);
  }

  /* A per-point attribute: from the page data when present, else computed from the text (a dropped file). */
  function attribute(name) {
    const data = state.data;
    if (state.attrs[name] !== undefined) return state.attrs[name];
    const given = data.attributes && data.attributes[name];
    let values = null;
    if (Array.isArray(given) && given.length === data.text.length) values = given;
    else if (name === "words") {
      values = data.text.map((_, i) => turnsOf(i).reduce((n, t) => n + (t.content.match(/\S+/g) || []).length, 0));
    } else if (name === "turns") {
      values = data.text.map((_, i) => Math.max(1, turnsOf(i).filter((t) => t.role === "user").length));
    }
    state.attrs[name] = values;
    return values;
  }

  function quantileBuckets(values) {
    const sorted = values.filter((v) => typeof v === "number").slice().sort((a, b) => a - b);
    if (!sorted.length) return [];
    const edges = [sorted[0]];
    for (let q = 1; q < 5; q += 1) {
      const v = sorted[Math.floor((q * sorted.length) / 5)];
      if (v > edges[edges.length - 1]) edges.push(v);
    }
    const buckets = edges.map((lo, i) => [lo, i + 1 < edges.length ? edges[i + 1] - 1 : sorted[sorted.length - 1]]);
    return buckets.filter(([lo, hi]) => hi >= lo);
  }

  /* The colour groups of a mode: [{key, label, points, color}] (one plot trace and one legend chip each). */
  function groupsFor(mode) {
    const data = state.data;
    const byKey = new Map();
    const add = (key, i) => { if (!byKey.has(key)) byKey.set(key, []); byKey.get(key).push(i); };
    if (mode === "model" && attribute("model")) {
      attribute("model").forEach((m, i) => add(m === null || m === undefined || m === "" ? "unknown" : String(m), i));
      return [...byKey.entries()].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]))
        .map(([key, points], n) => ({ key, label: key, points, color: PALETTE[n % PALETTE.length] }));
    }
    if (mode === "words") {
      const values = attribute("words");
      const buckets = quantileBuckets(values);
      values.forEach((v, i) => add(Math.max(0, buckets.findIndex(([lo, hi]) => v >= lo && v <= hi)), i));
      return buckets.map(([lo, hi], n) => ({ key: n, label: lo === hi ? `${lo} words` : `${lo}–${hi} words`,
        points: byKey.get(n) || [], color: SEQUENTIAL[Math.round((n * (SEQUENTIAL.length - 1)) / Math.max(1, buckets.length - 1))] }))
        .filter((g) => g.points.length);
    }
    if (mode === "turns") {
      attribute("turns").forEach((v, i) => add(TURN_BUCKETS.findIndex(([lo, hi]) => v >= lo && v <= hi), i));
      return TURN_BUCKETS.map(([lo, hi], n) => ({ key: n,
        label: lo === hi ? `${lo} turn${lo === 1 ? "" : "s"}` : hi === Infinity ? `${lo}+ turns` : `${lo}–${hi} turns`,
        points: byKey.get(n) || [], color: SEQUENTIAL[n] })).filter((g) => g.points.length);
    }
    data.color.forEach((c, i) => add(c, i));
    return [...byKey.keys()].sort((a, b) => a - b)
      .map((c, n) => ({ key: c, label: clusterName(c), points: byKey.get(c), color: PALETTE[n % PALETTE.length] }));
  }

  function buildTraces(data, mode) {
    state.groups = groupsFor(mode);
    if (mode === "cluster") state.clusters = state.groups.map((g) => ({ id: g.key, points: g.points }));
    const traces = state.groups.map((group) => ({
      type: "scatter3d",
      mode: "markers",
      name: `${group.label} (${group.points.length})`,
      x: group.points.map((i) => data.embedding[i][0]),
      y: group.points.map((i) => data.embedding[i][1]),
      z: group.points.map((i) => data.embedding[i][2]),
      customdata: group.points,
      hovertext: group.points.map((i) => preview(data.text[i])),
      hovertemplate: "#%{customdata}: %{hovertext}<extra>" + OC.escapeLabel(group.label) + "</extra>",
      marker: { size: 3, color: group.color, opacity: 0.8 },
    }));
    state.searchTrace = traces.length;
    traces.push({ type: "scatter3d", mode: "markers", name: "search matches", x: [], y: [], z: [], customdata: [],
      hoverinfo: "skip", marker: { size: 7, color: "#000", symbol: "diamond-open", opacity: 1 } });
    state.selectedTrace = traces.length;
    traces.push({ type: "scatter3d", mode: "markers", name: "selected", x: [], y: [], z: [], customdata: [],
      hoverinfo: "skip", marker: { size: 10, color: "rgba(0,0,0,0)", line: { color: "#cf222e", width: 4 } } });
    return traces;
  }

  const LEGEND_HEAD = {
    cluster: (n) => `${n} groups of similar conversations, each named by the words that set it apart`,
    model: (n) => `${n} models`,
    words: () => "length of the conversation, in words (five bands of about equal size)",
    turns: () => "number of turns (questions from the user)",
  };

  function renderLegend() {
    const legend = document.getElementById("legend");
    const head = (LEGEND_HEAD[state.mode] || LEGEND_HEAD.cluster)(state.groups.length);
    legend.replaceChildren(OC.el("div", { class: "meta" }, `${head} · click one to hide / show it`));
    state.groups.forEach((group, n) => {
      const chip = OC.el("span", { class: "chip", "data-group": String(group.key), role: "button" });
      if (state.mode === "cluster") chip.setAttribute("data-cluster", String(group.key));
      const swatch = OC.el("span", { class: "swatch" });
      swatch.style.background = group.color;
      chip.append(swatch, document.createTextNode(`${group.label} (${group.points.length})`));
      chip.addEventListener("click", () => {
        const visible = chip.classList.toggle("off") ? "legendonly" : true;
        Plotly.restyle(gd, { visible: visible }, [n]);
      });
      legend.appendChild(chip);
    });
  }

  function describe(data, origin) {
    const meta = data.meta || {};
    const source = meta.source || origin;
    const k = new Set(data.color).size;
    document.getElementById("title").textContent = data.title || `Conversation map (${origin})`;
    document.getElementById("meta").textContent =
      `Each dot is one of the ${data.text.length} conversations of “${source}”. Conversations about similar things ` +
      "sit close together; the axes themselves mean nothing. " +
      (k > 1 ? `The ${k} colours are groups of similar conversations found automatically, each named by the words ` +
        "that set it apart. " : "") +
      "Drag to turn the map, scroll to zoom, click a dot to read the conversation.";
    const how = [];
    if (meta.description) how.push(meta.description);
    if (typeof meta.silhouette === "number") {
      how.push(`Silhouette of the groups (how well they separate, from -1 to 1): ${meta.silhouette.toFixed(2)}.`);
    }
    const scores = Object.entries(meta.silhouettes || {});
    if (scores.length > 1) how.push("Silhouette by k: " + scores.map(([kk, v]) => `${kk}: ${Number(v).toFixed(2)}`).join(", ") + ".");
    how.push("Group names: the terms most specific to each group (c-TF-IDF over the conversations' words).");
    document.getElementById("how-text").textContent = how.join(" ");
    const note = document.getElementById("structure-note");
    const threshold = typeof meta.weak_threshold === "number" ? meta.weak_threshold : 0.25;
    const weak = typeof meta.silhouette === "number" && meta.silhouette < threshold;
    note.textContent = weak
      ? `The groups are weak: these conversations do not fall into clearly separate topics (silhouette ` +
        `${meta.silhouette.toFixed(2)}; below ${threshold} means no real structure). Read the colours as rough ` +
        "regions of one continuous cloud, not as distinct topics."
      : "";
    note.classList.toggle("hidden", !weak);
    const modelOption = document.querySelector("#colour-by option[value='model']");
    const hasModels = Array.isArray((data.attributes || {}).model);
    modelOption.disabled = !hasModels;
    modelOption.textContent = hasModels ? "model that answered" : "model that answered (not in this data)";
    if (!hasModels && state.mode === "model") state.mode = "cluster";
    document.getElementById("colour-by").value = state.mode;
  }

  function draw() {
    const data = state.data;
    const traces = buildTraces(data, state.mode);
    timings.tracesBuilt = timings.tracesBuilt || performance.now();
    const rendered = Plotly.react(gd, traces, state.layout, state.config);
    renderLegend();
    const query = document.getElementById("search").value;
    if (query) search(query);
    if (Number.isInteger(state.selected) && state.selected < data.text.length) {
      const p = data.embedding[state.selected];
      Plotly.restyle(gd, { x: [[p[0]]], y: [[p[1]]], z: [[p[2]]], customdata: [[state.selected]] }, [state.selectedTrace]);
    }
    return rendered;
  }

  function setColourMode(mode) {
    state.mode = ["cluster", "model", "words", "turns"].includes(mode) ? mode : "cluster";
    if (state.mode === "model" && !attribute("model")) state.mode = "cluster";
    document.getElementById("colour-by").value = state.mode;
    return draw();
  }

  function showConversation(index) {
    const data = state.data;
    if (!Number.isInteger(index) || index < 0 || index >= data.text.length) return false;
    const pane = document.getElementById("conversation");
    const model = data.attributes && Array.isArray(data.attributes.model) ? data.attributes.model[index] : null;
    const head = OC.el("div", { class: "conv-head" },
      `Conversation #${index}` + (data.ids ? ` · id ${data.ids[index]}` : "") + ` · group ${clusterName(data.color[index])}` +
      (model ? ` · ${model}` : ""));
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
    state.attrs = {};
    state.selected = null;
    describe(data, origin);
    state.layout = {
      margin: { l: 0, r: 0, t: 0, b: 0 },
      showlegend: false,
      uirevision: origin,
      scene: Object.fromEntries(["xaxis", "yaxis", "zaxis"].map((a) => [a, { title: { text: "" }, showticklabels: false }])),
    };
    state.config = { responsive: true, displaylogo: false, modeBarButtonsToAdd: [OC.downloadSvgButton()] };
    const rendered = draw().then(() => {
      window.ocViz.renderedAt = timings.rendered = performance.now();
    });
    if (!state.clickBound) {
      gd.on("plotly_click", onClick);
      state.clickBound = true;
    }
    document.getElementById("conversation").replaceChildren(
      OC.el("p", { class: "meta" }, "Click a point (or a search result) to read its conversation."));
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
  document.getElementById("colour-by").addEventListener("change", (e) => setColourMode(e.target.value));
  document.getElementById("file").addEventListener("change", (e) => {
    if (e.target.files[0]) loadFile(e.target.files[0]);
  });
  let timer = null;
  document.getElementById("search").addEventListener("input", (e) => {
    clearTimeout(timer);
    timer = setTimeout(() => search(e.target.value), 150);
  });

  window.ocViz = { state, load, search, showConversation, setColourMode, renderedAt: null, timings };
  try {
    load(initial, "page");
  } catch (err) {
    banner(`The page data is invalid: ${err.message}`, true);
  }
})();
