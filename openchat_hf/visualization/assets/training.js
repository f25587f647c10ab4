/* Training page: loss, tokens/s and supervised share per logged step, and the data report, from trainer_state.json. */
"use strict";
(function () {
  const OC = window.OC;
  const data = OC.readData("oc-data");
  const steps = data.steps || [];
  const logged = data.logged || {};
  const plotConfig = { displaylogo: false, responsive: true, modeBarButtonsToAdd: [OC.downloadSvgButton()],
    toImageButtonOptions: { format: "png", filename: "openchat-hf-training", scale: 2 } };
  const NOT_LOGGED = {
    tokens_per_second: "train_tokens_per_second",
    supervised_share: "tokens_per_step and supervised_tokens_per_step",
  };
  const fmtInt = (v) => (typeof v === "number" ? Math.round(v).toLocaleString("en-US") : "—");

  function notLogged(id, what) {
    const node = document.getElementById(id);
    node.classList.add("empty");
    node.replaceChildren(OC.el("p", { class: "meta not-logged" },
      `Not logged by this run: its trainer_state.json has no ${what} (written by openchat-hf's trainer).`));
  }

  function header() {
    document.getElementById("title").textContent = data.title || "Training run";
    const parts = [];
    if (typeof data.global_step === "number") parts.push(`${fmtInt(data.global_step)} optimizer steps`);
    if (typeof data.epochs === "number") parts.push(`${OC.fmt(data.epochs, 0)} epoch(s) planned`);
    parts.push(`${steps.length} logged points`);
    if (typeof data.logging_steps === "number") parts.push(`one every ${fmtInt(data.logging_steps)} step(s)`);
    parts.push(`from ${data.state_file || "trainer_state.json"}`);
    document.getElementById("meta").textContent = parts.join(" · ");
    if (!steps.length) {
      const note = document.getElementById("note");
      note.textContent = "This run logged no training step (its logging_steps is larger than the run): nothing to draw.";
      note.classList.remove("hidden");
    }
  }

  function cards() {
    const last = steps.length ? steps[steps.length - 1] : {};
    const first = steps.length ? steps[0] : {};
    const summary = data.summary || {};
    const items = [
      ["first logged loss", OC.fmt(first.loss, 3)],
      ["last logged loss", OC.fmt(last.loss, 3)],
      ["average tokens / s", logged.tokens_per_second ? fmtInt(data.mean_tokens_per_second) : "not logged"],
      ["average supervised share", logged.supervised_share ? OC.fmt(100 * data.mean_supervised_share, 1, "%") : "not logged"],
      ["training time", typeof summary.train_runtime === "number" ? `${OC.fmt(summary.train_runtime, 1)} s` : "—"],
    ];
    document.getElementById("cards").replaceChildren(...items.map(([name, value]) => {
      const card = OC.el("div", { class: "card", "data-card": name });
      card.append(OC.el("div", { class: "meta" }, name), OC.el("div", { class: "value" }, value));
      return card;
    }));
  }

  const x = steps.map((s) => s.step);

  function lossChart() {
    const traces = [{ type: "scatter", mode: "lines+markers", name: "training loss", x: x, y: steps.map((s) => s.loss),
      line: { color: "#0969da" }, hovertemplate: "step %{x}: loss %{y:.4f}<extra></extra>" }];
    const evals = data.evals || [];
    if (evals.length) {
      traces.push({ type: "scatter", mode: "markers", name: "evaluation loss", x: evals.map((e) => e.step),
        y: evals.map((e) => e.loss), marker: { color: "#cf222e", size: 9 }, hovertemplate: "step %{x}: eval loss %{y:.4f}<extra></extra>" });
    }
    if (logged.learning_rate) {
      traces.push({ type: "scatter", mode: "lines", name: "learning rate (right axis)", x: x,
        y: steps.map((s) => s.learning_rate), yaxis: "y2", line: { color: "#8c959f", dash: "dot" },
        hovertemplate: "step %{x}: lr %{y:.2e}<extra></extra>" });
    }
    Plotly.newPlot("loss-chart", traces, { margin: { t: 20, r: 70 }, xaxis: { title: { text: "optimizer step" } },
      yaxis: { title: { text: "loss" } }, legend: { orientation: "h", y: 1.12 },
      yaxis2: { overlaying: "y", side: "right", showgrid: false, rangemode: "tozero", tickformat: ".1e", title: { text: "learning rate" } } }, plotConfig);
  }

  function speedChart() {
    if (!logged.tokens_per_second) return notLogged("speed-chart", NOT_LOGGED.tokens_per_second);
    Plotly.newPlot("speed-chart", [{ type: "scatter", mode: "lines+markers", name: "tokens / s", x: x,
      y: steps.map((s) => s.tokens_per_second), line: { color: "#1a7f37" }, hovertemplate: "step %{x}: %{y:,.0f} tokens/s<extra></extra>" }],
    { margin: { t: 10 }, xaxis: { title: { text: "optimizer step" } }, yaxis: { title: { text: "tokens / s" }, rangemode: "tozero" } }, plotConfig);
  }

  function shareChart() {
    if (!logged.supervised_share) return notLogged("share-chart", NOT_LOGGED.supervised_share);
    Plotly.newPlot("share-chart", [{ type: "scatter", mode: "lines+markers", name: "supervised share", x: x,
      y: steps.map((s) => (typeof s.supervised_share === "number" ? 100 * s.supervised_share : null)),
      customdata: steps.map((s) => [s.supervised_tokens_per_step, s.tokens_per_step]), line: { color: "#8250df" },
      hovertemplate: "step %{x}: %{y:.1f}% (%{customdata[0]:,.0f} of %{customdata[1]:,.0f} tokens)<extra></extra>" }],
    { margin: { t: 10 }, xaxis: { title: { text: "optimizer step" } }, yaxis: { title: { text: "% of the step's tokens" }, range: [0, 100] } }, plotConfig);
  }

  function dataReport() {
    const report = data.data_report;
    if (!report) return;
    document.getElementById("data-section").classList.remove("hidden");
    const dropped = report.drops.reduce((n, d) => n + d.count, 0);
    const pctOf = (n) => (report.inputs ? `${OC.fmt((100 * n) / report.inputs, 1)}%` : "—");
    document.getElementById("data-meta").textContent =
      `${fmtInt(report.inputs)} conversations came in from ${fmtInt(report.files)} file(s); ${fmtInt(dropped)} were ` +
      `dropped for the reasons below and ${fmtInt(report.kept)} (${pctOf(report.kept)}) were kept. Every conversation ` +
      "is accounted for.";
    const labels = report.drops.map((d) => OC.escapeLabel(`${d.step}: ${d.reason}`));
    Plotly.newPlot("data-chart", [{
      type: "waterfall", orientation: "v", x: ["input", ...labels, "kept"],
      measure: ["absolute", ...report.drops.map(() => "relative"), "total"],
      y: [report.inputs, ...report.drops.map((d) => -d.count), 0],
      text: [fmtInt(report.inputs), ...report.drops.map((d) => `−${fmtInt(d.count)}`), fmtInt(report.kept)],
      textposition: "outside", cliponaxis: false, connector: { line: { color: "#8c959f" } },
      decreasing: { marker: { color: "#cf222e" } }, totals: { marker: { color: "#1a7f37" } }, increasing: { marker: { color: "#0969da" } },
      hovertemplate: "%{x}: %{text}<extra></extra>",
    }], { margin: { t: 30, b: 120 }, yaxis: { title: { text: "conversations" }, rangemode: "tozero" }, showlegend: false,
      title: { text: "kept and dropped, by step and reason", font: { size: 13 } } }, plotConfig);

    const types = Object.entries(report.model_types || {});
    if (types.length) {
      const names = types.map(([n]) => OC.escapeLabel(n));
      const reasons = [...new Set(types.flatMap(([, mt]) => Object.keys(mt.dropped)))].sort();
      const traces = [
        { type: "bar", name: "train", x: names, y: types.map(([, mt]) => mt.train), marker: { color: "#1a7f37" } },
        { type: "bar", name: "eval", x: names, y: types.map(([, mt]) => mt.eval), marker: { color: "#0969da" } },
        ...reasons.map((r, i) => ({ type: "bar", name: `dropped: ${OC.escapeLabel(r)}`, x: names,
          y: types.map(([, mt]) => mt.dropped[r] || 0), marker: { color: ["#cf222e", "#bc4c00", "#9a6700"][i % 3] } })),
      ];
      Plotly.newPlot("split-chart", traces, { barmode: "stack", margin: { t: 30 }, legend: { orientation: "h", y: -0.15 },
        yaxis: { title: { text: "conversations" } }, title: { text: "kept conversations per model type", font: { size: 13 } } }, plotConfig);
    } else {
      document.getElementById("split-chart").replaceChildren(OC.el("p", { class: "meta" },
        "No tokenized datasets in this report (the pipeline ran without --tokenizer)."));
    }

    const table = document.getElementById("drops");
    const head = OC.el("tr");
    ["Step", "Reason", "Conversations", "Share of the input", "Examples (from dropped.jsonl)"].forEach((h, i) =>
      head.appendChild(OC.el("th", i === 2 || i === 3 ? { class: "num" } : null, h)));
    table.replaceChildren(head);
    report.drops.forEach((d) => {
      const tr = OC.el("tr", { "data-reason": `${d.step}/${d.reason}` });
      tr.append(OC.el("td", null, d.step), OC.el("td", null, d.reason), OC.el("td", { class: "num" }, fmtInt(d.count)),
        OC.el("td", { class: "num" }, pctOf(d.count)));
      const cell = tr.appendChild(OC.el("td", { class: "examples" }));
      (report.examples[`${d.step}/${d.reason}`] || []).forEach((e) => {
        const box = cell.appendChild(OC.el("div", { class: "example" }));
        box.appendChild(OC.el("span", { class: "meta" }, `${e.source}${e.id ? ` · ${e.id}` : ""}: `));
        box.appendChild(document.createTextNode(e.excerpt));
      });
      table.appendChild(tr);
    });
  }

  const failures = [];
  for (const section of [header, cards, lossChart, speedChart, shareChart, dataReport]) {
    try {
      section();
    } catch (err) {
      failures.push(`${section.name}: ${err.message}`);
      console.warn("openchat-hf training page:", section.name, err);
    }
  }
  window.ocTraining = { data: data, failures: failures, renderedAt: performance.now() };
})();
