/* Evaluation-results page: charts and tables from report.json (percentages normalised by the Python side). */
"use strict";
(function () {
  const OC = window.OC;
  const data = OC.readData("oc-data");
  const models = data.models || [];
  const baseline = data.baseline || "baseline";
  const plotConfig = { displaylogo: false, responsive: true, modeBarButtonsToAdd: [OC.downloadSvgButton()],
    toImageButtonOptions: { format: "png", filename: "openchat-hf-eval", scale: 2 } };
  const label = (text) => OC.escapeLabel(text);
  const pct = (v) => OC.fmt(v, 1, "%");
  const ci = (pair) => (Array.isArray(pair) && pair.every((v) => typeof v === "number") ? `[${pct(pair[0])}, ${pct(pair[1])}]` : "—");

  function row(cells, header) {
    const tr = OC.el("tr");
    cells.forEach((cell) => {
      const [text, cls] = Array.isArray(cell) ? cell : [cell, ""];
      tr.appendChild(OC.el(header ? "th" : "td", cls ? { class: cls } : null, text));
    });
    return tr;
  }

  function header() {
    document.getElementById("title").textContent = data.title || "Evaluation results";
    const judge = data.judge || {};
    const parts = [`bench: ${data.bench || "?"}`, `baseline: ${baseline}`, `judge: ${judge.model || "?"}`];
    if (judge.prompts_version) parts.push(`prompts: ${judge.prompts_version}`);
    if (judge.samples) parts.push(`samples per order: ${judge.samples}`);
    parts.push(`${models.length} model(s)`);
    document.getElementById("meta").textContent = parts.join(" · ");
    if (data.note) {
      const note = document.getElementById("note");
      note.textContent = data.note;
      note.classList.remove("hidden");
    }
  }

  function errorBars(values, pairs) {
    return {
      type: "data", symmetric: false, visible: true,
      array: pairs.map((p, i) => (p && typeof p[1] === "number" && typeof values[i] === "number" ? p[1] - values[i] : 0)),
      arrayminus: pairs.map((p, i) => (p && typeof p[0] === "number" && typeof values[i] === "number" ? values[i] - p[0] : 0)),
    };
  }

  function relativeChart() {
    const names = models.map((m) => label(m.model));
    const values = models.map((m) => m.relative_score_pct);
    Plotly.newPlot("relative-chart", [{
      type: "bar", x: names, y: values, name: "relative score",
      error_y: errorBars(values, models.map((m) => m.relative_score_ci_pct)),
      text: values.map((v) => pct(v)), textposition: "outside", cliponaxis: false,
      marker: { color: values.map((v) => (typeof v === "number" && v >= 100 ? "#1a7f37" : "#0969da")) },
      hovertemplate: "%{x}: %{y:.1f}%<extra></extra>",
    }], {
      margin: { t: 30, b: 80 }, yaxis: { title: { text: `% of ${label(baseline)}'s total` }, rangemode: "tozero" },
      shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 100, y1: 100, line: { dash: "dot", color: "#57606a" } }],
    }, plotConfig);

    const table = document.getElementById("summary");
    table.replaceChildren(row(["Model", ["Relative score", "num"], ["95% CI", "num"], ["Wins", "num"], ["Ties", "num"],
      ["Losses", "num"], ["Win rate", "num"], ["Win-rate CI", "num"], ["Win rate (no ties)", "num"],
      ["Judge failures", "num"], ["Questions", "num"]], true));
    models.forEach((m) => {
      const tr = row([m.model, [pct(m.relative_score_pct), "num"], [ci(m.relative_score_ci_pct), "num"],
        [String(m.wins ?? "—"), "num"], [String(m.ties ?? "—"), "num"], [String(m.losses ?? "—"), "num"],
        [pct(m.win_rate_pct), "num"], [ci(m.win_rate_ci_pct), "num"], [pct(m.win_rate_no_ties_pct), "num"],
        [String(m.failures ?? 0) + (typeof m.failed_questions === "number" ? ` (${m.failed_questions} questions)` : ""), "num"],
        [String(m.n_questions ?? (m.questions || []).length), "num"]]);
      tr.setAttribute("data-model", m.model);
      table.appendChild(tr);
    });
  }

  function wtlChart() {
    const names = models.map((m) => label(m.model));
    const judged = models.map((m) => (m.wins || 0) + (m.ties || 0) + (m.losses || 0));
    const share = (key) => models.map((m, i) => (judged[i] ? (100 * (m[key] || 0)) / judged[i] : 0));
    const bar = (key, name, color) => ({
      type: "bar", orientation: "h", y: names, x: share(key), name: name, marker: { color: color },
      customdata: models.map((m) => m[key] || 0), hovertemplate: `%{y}: ${name} %{customdata} (%{x:.1f}%)<extra></extra>`,
    });
    const rates = models.map((m) => m.win_rate_pct);
    const ciPairs = models.map((m) => m.win_rate_ci_pct);
    Plotly.newPlot("wtl-chart", [
      bar("wins", "win", "#2da44e"), bar("ties", "tie", "#afb8c1"), bar("losses", "loss", "#cf222e"),
      { type: "scatter", mode: "markers", y: names, x: rates, name: "win rate (95% CI)",
        marker: { color: "#000", symbol: "diamond", size: 9 },
        error_x: errorBars(rates, ciPairs), hovertemplate: "%{y}: win rate %{x:.1f}%<extra></extra>" },
    ], { barmode: "stack", margin: { l: 160, t: 20 }, xaxis: { title: { text: "% of judged questions" }, range: [0, 100] },
      legend: { orientation: "h" } }, plotConfig);
  }

  function categories() {
    const names = [...new Set(models.flatMap((m) => Object.keys(m.categories || {})))].sort();
    const traces = models.map((m) => ({
      type: "bar", name: label(m.model), x: names.map(label),
      y: names.map((c) => (m.categories[c] ? m.categories[c].relative_score_pct : null)),
      hovertemplate: "%{x}: %{y:.1f}%<extra>" + label(m.model) + "</extra>",
    }));
    Plotly.newPlot("category-chart", traces, { barmode: "group", margin: { t: 20, b: 100 },
      yaxis: { title: { text: "relative score (%)" } }, legend: { orientation: "h", y: 1.1 } }, plotConfig);
    const table = document.getElementById("categories");
    table.replaceChildren(row(["Category", ...models.map((m) => [m.model, "num"])], true));
    names.forEach((c) => {
      table.appendChild(row([c, ...models.map((m) => {
        const cat = m.categories[c];
        return [cat ? `${pct(cat.relative_score_pct)} (${cat.wins ?? 0}/${cat.ties ?? 0}/${cat.losses ?? 0} of ${cat.n ?? "?"})` : "—", "num"];
      })]));
    });
  }

  function mtBench() {
    const mt = data.mt_bench;
    if (!mt || !Array.isArray(mt.models) || !mt.models.length) return;
    document.getElementById("mt-bench-section").classList.remove("hidden");
    const cats = [...new Set(mt.models.flatMap((m) => Object.keys(m.categories || {})))].sort();
    const table = document.getElementById("mt-bench");
    table.replaceChildren(row(["Model", ["Average", "num"], ["Turn 1", "num"], ["Turn 2", "num"],
      ...cats.map((c) => [c, "num"])], true));
    mt.models.forEach((m) => {
      const turns = m.turns || {};
      table.appendChild(row([m.model, [OC.fmt(m.average, 2), "num"], [OC.fmt(turns["1"], 2), "num"],
        [OC.fmt(turns["2"], 2), "num"], ...cats.map((c) => [OC.fmt((m.categories || {})[c], 2), "num"])]));
    });
  }

  function markdownCell(text, cls) {
    const td = OC.el("td", { class: cls });
    OC.renderMarkdown(text ?? "", td.appendChild(OC.el("div", { class: "md" })));
    return td;
  }

  function reviewsCell(q, modelName) {
    const td = OC.el("td", { class: "reviews" });
    const reviews = Array.isArray(q.reviews) ? q.reviews : [];
    const details = td.appendChild(OC.el("details"));
    details.appendChild(OC.el("summary", null, `${reviews.length} judge review(s)`));
    reviews.forEach((r) => {
      const box = details.appendChild(OC.el("div", { class: "review" }));
      const order = r.order === "baseline_first" ? `${baseline} first` : `${modelName} first`;
      let scores = "no scores";
      if (typeof r.model_score === "number" && typeof r.baseline_score === "number") {
        scores = `${modelName} ${OC.fmt(r.model_score, 1)} · ${baseline} ${OC.fmt(r.baseline_score, 1)}`;
      } else if (Array.isArray(r.scores) && r.scores.length === 2) {
        const [a, b] = r.scores;
        const [mine, theirs] = r.order === "baseline_first" ? [b, a] : [a, b];
        scores = `${modelName} ${OC.fmt(mine, 1)} · ${baseline} ${OC.fmt(theirs, 1)}`;
      }
      box.appendChild(OC.el("div", { class: "meta" }, `${order} · sample ${r.sample ?? 0} · ${scores}`));
      if (r.error) box.appendChild(OC.el("div", { class: "error" }, `judge error: ${r.error}`));
      if (r.text) OC.renderMarkdown(r.text, box.appendChild(OC.el("div", { class: "md" })));
    });
    return td;
  }

  function questions() {
    const modelSelect = document.getElementById("model-select");
    const categorySelect = document.getElementById("category-select");
    const outcomeSelect = document.getElementById("outcome-select");
    models.forEach((m, i) => modelSelect.appendChild(OC.el("option", { value: String(i) }, m.model)));
    function fillCategories() {
      const m = models[Number(modelSelect.value)] || { questions: [] };
      const keep = categorySelect.value;
      categorySelect.replaceChildren(OC.el("option", { value: "" }, "all"));
      [...new Set(m.questions.map((q) => String(q.category ?? "")))].sort()
        .forEach((c) => categorySelect.appendChild(OC.el("option", { value: c }, c || "(none)")));
      categorySelect.value = keep;
      if (categorySelect.value !== keep) categorySelect.value = "";
    }
    function render() {
      const m = models[Number(modelSelect.value)];
      const table = document.getElementById("questions");
      table.replaceChildren(row(["#", "Category", "Question", `${m ? m.model : "model"} answer`, `${baseline} answer`,
        ["Scores", "num"], "Outcome", "Judge"], true));
      if (!m) return;
      const rows = m.questions.filter((q) => (!categorySelect.value || String(q.category ?? "") === categorySelect.value) &&
        (!outcomeSelect.value || q.outcome === outcomeSelect.value));
      rows.forEach((q) => {
        const outcome = ["win", "tie", "loss", "failed"].includes(q.outcome) ? q.outcome : "failed";
        const tr = OC.el("tr", { class: outcome === "failed" ? "failed" : "", "data-question": String(q.question_id) });
        tr.appendChild(OC.el("td", null, String(q.question_id ?? "")));
        tr.appendChild(OC.el("td", null, String(q.category ?? "")));
        tr.appendChild(markdownCell(q.question, "question"));
        tr.appendChild(markdownCell(q.answer, "answer model-answer"));
        tr.appendChild(markdownCell(q.baseline_answer, "answer baseline-answer"));
        tr.appendChild(OC.el("td", { class: "num scores" }, `${OC.fmt(q.model_score, 2)} / ${OC.fmt(q.baseline_score, 2)}`));
        const badge = OC.el("span", { class: "badge " + outcome }, outcome === "failed" ? "judge failed" : outcome);
        tr.appendChild(OC.el("td", { class: "outcome" })).appendChild(badge);
        tr.appendChild(reviewsCell(q, m.model));
        table.appendChild(tr);
      });
      document.getElementById("question-count").textContent = `${rows.length} of ${m.questions.length} questions`;
    }
    modelSelect.addEventListener("change", () => { fillCategories(); render(); });
    categorySelect.addEventListener("change", render);
    outcomeSelect.addEventListener("change", render);
    fillCategories();
    render();
  }

  const sections = models.length ? [header, relativeChart, wtlChart, categories, mtBench, questions] : [header, mtBench];
  if (!models.length) {  // an MT-bench-only report: no pairwise sections
    document.querySelectorAll("main > section:not(#mt-bench-section)").forEach((s) => s.classList.add("hidden"));
  }
  const failures = [];
  for (const section of sections) {
    try {
      section();
    } catch (err) { // one broken section never takes the rest of the page down
      failures.push(`${section.name}: ${err.message}`);
      console.warn("openchat-hf eval page:", section.name, err);
    }
  }
  window.ocEval = { data: data, failures: failures, renderedAt: performance.now() };
})();
