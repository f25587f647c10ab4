/* Evaluation-results page: charts and tables from one or more report.json (normalised by the Python side). */
"use strict";
(function () {
  const OC = window.OC;
  const data = OC.readData("oc-data");
  const models = data.models || [];
  const runs = data.runs || [];
  const several = runs.length > 1;
  const baselineOf = (m) => ((runs[m.run] || {}).baseline || data.baseline || "baseline");
  const plotConfig = { displaylogo: false, responsive: true, modeBarButtonsToAdd: [OC.downloadSvgButton()],
    toImageButtonOptions: { format: "png", filename: "openchat-hf-eval", scale: 2 } };
  const label = (text) => OC.escapeLabel(text);
  const pct = (v) => OC.fmt(v, 1, "%");
  const isPair = (p) => Array.isArray(p) && p.length === 2 && p.every((v) => typeof v === "number");
  const ci = (pair) => (isPair(pair) ? `[${pct(pair[0])}, ${pct(pair[1])}]` : "—");
  const lc = (m) => m.length_controlled || {};
  const AGREEMENT = { agree: "orders agree", flip: "orders disagree (flip)", partial: "orders disagree (tie in one)",
    one_order: "one order only" };

  function row(cells, header) {
    const tr = OC.el("tr");
    cells.forEach((cell) => {
      const [text, cls] = Array.isArray(cell) ? cell : [cell, ""];
      tr.appendChild(OC.el(header ? "th" : "td", cls ? { class: cls } : null, text));
    });
    return tr;
  }

  function coverageText(c) {
    if (!c || typeof c.judged !== "number") return "—";
    return `${c.judged} of ${typeof c.total === "number" ? c.total : "?"}` + (c.complete ? "" : " (incomplete)");
  }

  function protocolText(p) {
    if (!p || !p.name) return "—";
    return p.name + (p.prompts_sha256 ? ` (prompts ${String(p.prompts_sha256).slice(0, 12)})` : "");
  }

  function header() {
    document.getElementById("title").textContent = data.title || "Evaluation results";
    const parts = [];
    if (several) {
      parts.push(`${runs.length} runs`);
      if (data.bench) parts.push(`bench: ${data.bench}`);
      if (data.baseline) parts.push(`baseline: ${data.baseline}`);
    } else {
      const judge = data.judge || {};
      parts.push(`bench: ${data.bench || "?"}`, `baseline: ${data.baseline || "baseline"}`, `judge: ${judge.model || "?"}`);
      if (judge.prompts_version) parts.push(`prompts: ${judge.prompts_version}`);
      if (judge.samples) parts.push(`samples per order: ${judge.samples}`);
      if (data.protocol && data.protocol.name) parts.push(`protocol: ${protocolText(data.protocol)}`);
    }
    parts.push(`${models.length} model(s)`);
    document.getElementById("meta").textContent = parts.join(" · ");
    const notes = several ? runs.filter((r) => r.note).map((r) => `${r.label}: ${r.note}`) : (data.note ? [data.note] : []);
    if (notes.length) {
      const note = document.getElementById("note");
      note.textContent = notes.join("\n");
      note.classList.remove("hidden");
    }
    const warnings = [...(data.comparability || [])];
    const mtModels = (data.mt_bench && Array.isArray(data.mt_bench.models)) ? data.mt_bench.models : [];
    [...models, ...mtModels.map((m) => ({ ...m, label: `${m.label || m.model} (MT-bench grades)` }))].forEach((m) => {
      const c = m.coverage;
      if (c && c.complete === false) {
        warnings.push(`${m.label}: only ${coverageText(c).replace(" (incomplete)", "")} questions were judged; ` +
          "its figures cover the judged questions only.");
      }
    });
    if (warnings.length) {
      const node = document.getElementById("warnings");
      node.replaceChildren(...warnings.map((w) => OC.el("div", { class: "warning" }, w)));
      node.classList.remove("hidden");
    }
  }

  function runsTable() {
    if (!several) return;
    document.getElementById("runs-section").classList.remove("hidden");
    const table = document.getElementById("runs");
    table.replaceChildren(row(["Run", "Model", "Bench", "Baseline", "Judge", "Protocol", ["Questions judged", "num"],
      ["Relative score", "num"], ["Win rate", "num"], ["Length-controlled win rate", "num"]], true));
    runs.forEach((r, i) => {
      models.filter((m) => m.run === i).forEach((m) => {
        const tr = row([r.label, m.model, String(r.bench ?? "—"), String(r.baseline ?? "—"),
          String((r.judge || {}).model ?? "—"), protocolText(m.protocol || r.protocols[0]),
          [coverageText(m.coverage || r.coverage), "num"], [pct(m.relative_score_pct), "num"], [pct(m.win_rate_pct), "num"],
          [pct(lc(m).win_rate_pct), "num"]]);
        tr.setAttribute("data-run", String(i));
        table.appendChild(tr);
      });
    });
  }

  function errorBars(values, pairs) {
    return {
      type: "data", symmetric: false, visible: true,
      array: pairs.map((p, i) => (isPair(p) && typeof values[i] === "number" ? p[1] - values[i] : 0)),
      arrayminus: pairs.map((p, i) => (isPair(p) && typeof values[i] === "number" ? values[i] - p[0] : 0)),
    };
  }

  function relativeChart() {
    const names = models.map((m) => label(m.label));
    const values = models.map((m) => m.relative_score_pct);
    Plotly.newPlot("relative-chart", [{
      type: "bar", x: names, y: values, name: "relative score",
      error_y: errorBars(values, models.map((m) => m.relative_score_ci_pct)),
      text: values.map((v) => pct(v)), textposition: "outside", cliponaxis: false,
      marker: { color: values.map((v) => (typeof v === "number" && v >= 100 ? "#1a7f37" : "#0969da")) },
      hovertemplate: "%{x}: %{y:.1f}%<extra></extra>",
    }], {
      margin: { t: 30, b: 80 }, yaxis: { title: { text: several ? "% of the baseline's total" : `% of ${label(data.baseline || "baseline")}'s total` }, rangemode: "tozero" },
      shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 100, y1: 100, line: { dash: "dot", color: "#57606a" } }],
    }, plotConfig);

    const table = document.getElementById("summary");
    table.replaceChildren(row(["Model", ["Relative score", "num"], ["95% CI", "num"], ["Wins", "num"], ["Ties", "num"],
      ["Losses", "num"], ["Win rate", "num"], ["Win-rate CI", "num"], ["Length-controlled win rate", "num"],
      ["LC CI", "num"], ["Win rate (no ties)", "num"], ["Judge failures", "num"], ["Questions", "num"],
      ["Judged", "num"]], true));
    models.forEach((m) => {
      const tr = row([m.label, [pct(m.relative_score_pct), "num"], [ci(m.relative_score_ci_pct), "num"],
        [String(m.wins ?? "—"), "num"], [String(m.ties ?? "—"), "num"], [String(m.losses ?? "—"), "num"],
        [pct(m.win_rate_pct), "num"], [ci(m.win_rate_ci_pct), "num"], [pct(lc(m).win_rate_pct), "num lc"],
        [ci(lc(m).ci_pct), "num"], [pct(m.win_rate_no_ties_pct), "num"],
        [String(m.failures ?? 0) + (typeof m.failed_questions === "number" ? ` (${m.failed_questions} questions)` : ""), "num"],
        [String(m.n_questions ?? (m.questions || []).length), "num"], [coverageText(m.coverage), "num"]]);
      tr.setAttribute("data-model", m.label);
      table.appendChild(tr);
    });
  }

  function winRateChart() {
    const names = models.map((m) => label(m.label));
    const raw = models.map((m) => m.win_rate_pct);
    const lcRates = models.map((m) => lc(m).win_rate_pct);
    const hasLc = lcRates.some((v) => typeof v === "number");
    const traces = [{ type: "bar", name: "win rate (ties count half)", x: names, y: raw, marker: { color: "#0969da" },
      error_y: errorBars(raw, models.map((m) => m.win_rate_ci_pct)), hovertemplate: "%{x}: %{y:.1f}%<extra>raw</extra>" }];
    if (hasLc) {
      traces.push({ type: "bar", name: "length-controlled win rate", x: names, y: lcRates, marker: { color: "#bf8700" },
        error_y: errorBars(lcRates, models.map((m) => lc(m).ci_pct)),
        hovertemplate: "%{x}: %{y:.1f}%<extra>length-controlled</extra>" });
    }
    document.getElementById("winrate-note").textContent = hasLc
      ? "Judges tend to prefer longer answers. The length-controlled win rate estimates the win rate the model " +
        "would have if its answers were as long as the baseline's; a large gap between the two bars means length " +
        "explains part of the result. Bars show 95% intervals."
      : "This report has no length-controlled win rate (it was written by an older openchat-hf): only the raw " +
        "win rate is shown.";
    Plotly.newPlot("winrate-chart", traces, { barmode: "group", margin: { t: 20, b: 80 },
      yaxis: { title: { text: "% of judged questions" }, range: [0, 105] }, legend: { orientation: "h", y: 1.12 },
      shapes: [{ type: "line", xref: "paper", x0: 0, x1: 1, y0: 50, y1: 50, line: { dash: "dot", color: "#57606a" } }],
    }, plotConfig);
  }

  function wtlChart() {
    const names = models.map((m) => label(m.label));
    const judged = models.map((m) => (m.wins || 0) + (m.ties || 0) + (m.losses || 0));
    const share = (key) => models.map((m, i) => (judged[i] ? (100 * (m[key] || 0)) / judged[i] : 0));
    const bar = (key, name, color) => ({
      type: "bar", orientation: "h", y: names, x: share(key), name: name, marker: { color: color },
      customdata: models.map((m) => m[key] || 0), hovertemplate: `%{y}: ${name} %{customdata} (%{x:.1f}%)<extra></extra>`,
    });
    const rates = models.map((m) => m.win_rate_pct);
    Plotly.newPlot("wtl-chart", [
      bar("wins", "win", "#2da44e"), bar("ties", "tie", "#afb8c1"), bar("losses", "loss", "#cf222e"),
      { type: "scatter", mode: "markers", y: names, x: rates, name: "win rate (95% CI)",
        marker: { color: "#000", symbol: "diamond", size: 9 },
        error_x: errorBars(rates, models.map((m) => m.win_rate_ci_pct)), hovertemplate: "%{y}: win rate %{x:.1f}%<extra></extra>" },
    ], { barmode: "stack", margin: { l: 160, t: 20 }, xaxis: { title: { text: "% of judged questions" }, range: [0, 100] },
      legend: { orientation: "h" } }, plotConfig);
  }

  function bias() {
    const table = document.getElementById("bias");
    table.replaceChildren(row(["Model", ["Questions scored in both orders", "num"], ["Orders disagree", "num"],
      ["of which flips (win ↔ loss)", "num"], ["Judge preferred the answer it read first", "num"]], true));
    if (models.every((m) => !(m.position_bias || {}).both_orders)) {
      table.before(OC.el("p", { class: "meta one-order" }, "No question was scored in both orders (a one-order " +
        "protocol, or every second reading failed): this run cannot show position bias."));
    }
    models.forEach((m) => {
      const b = m.position_bias || {};
      const first = typeof b.first_position_win_pct === "number"
        ? `${pct(b.first_position_win_pct)} of ${b.decided_reviews} decided reviews` : "—";
      const tr = row([m.label, [String(b.both_orders ?? 0), "num"], [String(b.disagreements ?? 0), "num disagreements"],
        [String(b.flips ?? 0), "num"], [first, "num"]]);
      tr.setAttribute("data-model", m.label);
      table.appendChild(tr);
    });
  }

  function categories() {
    const names = [...new Set(models.flatMap((m) => Object.keys(m.categories || {})))].sort();
    const traces = models.map((m) => ({
      type: "bar", name: label(m.label), x: names.map(label),
      y: names.map((c) => (m.categories[c] ? m.categories[c].relative_score_pct : null)),
      hovertemplate: "%{x}: %{y:.1f}%<extra>" + label(m.label) + "</extra>",
    }));
    Plotly.newPlot("category-chart", traces, { barmode: "group", margin: { t: 20, b: 100 },
      yaxis: { title: { text: "relative score (%)" } }, legend: { orientation: "h", y: 1.1 } }, plotConfig);
    const table = document.getElementById("categories");
    table.replaceChildren(row(["Category", ...models.map((m) => [m.label, "num"])], true));
    names.forEach((c) => {
      table.appendChild(row([c, ...models.map((m) => {
        const cat = m.categories[c];
        return [cat ? `${pct(cat.relative_score_pct)} (${cat.wins ?? 0}/${cat.ties ?? 0}/${cat.losses ?? 0} of ${cat.n ?? "?"})` : "—", "num"];
      })]));
    });
  }

  /* ------------------------------------------------------------------------------------------ MT-bench */
  function turnRatings(q) {
    const out = {};
    (Array.isArray(q.turns) ? q.turns : []).forEach((t, i) => {
      if (t && typeof t === "object") out[String(t.turn ?? i + 1)] = t;
    });
    return out;
  }

  function mtBench() {
    const mt = data.mt_bench;
    if (!mt || !Array.isArray(mt.models) || !mt.models.length) return;
    document.getElementById("mt-bench-section").classList.remove("hidden");
    const cats = [...new Set(mt.models.flatMap((m) => Object.keys(m.categories || {})))].sort();
    const turnNames = [...new Set(mt.models.flatMap((m) => Object.keys(m.turns || {})))].sort();
    if (!turnNames.length) turnNames.push("1", "2");
    const table = document.getElementById("mt-bench");
    const graded = mt.models.some((m) => m.coverage);
    table.replaceChildren(row(["Model", ["Average", "num"], ...turnNames.map((t) => [`Turn ${t}`, "num"]),
      ...cats.map((c) => [c, "num"]), ...(graded ? [["Graded", "num"]] : [])], true));
    mt.models.forEach((m) => {
      const turns = m.turns || {};
      table.appendChild(row([m.label || m.model, [OC.fmt(m.average, 2), "num"], ...turnNames.map((t) => [OC.fmt(turns[t], 2), "num"]),
        ...cats.map((c) => [OC.fmt((m.categories || {})[c], 2), "num"]), ...(graded ? [[coverageText(m.coverage), "num"]] : [])]));
    });
    Plotly.newPlot("mt-turn-chart", turnNames.map((t, i) => ({
      type: "bar", name: `turn ${t}`, x: mt.models.map((m) => label(m.label || m.model)),
      y: mt.models.map((m) => (m.turns || {})[t] ?? null), marker: { color: ["#0969da", "#8250df", "#bf8700"][i % 3] },
      hovertemplate: `%{x}: turn ${t} %{y:.2f}<extra></extra>`,
    })), { barmode: "group", margin: { t: 20, b: 60 }, yaxis: { title: { text: "average grade" }, range: [0, 10] },
      legend: { orientation: "h", y: 1.15 } }, plotConfig);
    mtQuestions(mt.models.filter((m) => Array.isArray(m.questions) && m.questions.length));
  }

  function mtQuestions(graded) {
    if (!graded.length) return;
    document.getElementById("mt-questions-block").classList.remove("hidden");
    const select = document.getElementById("mt-model-select");
    const sort = document.getElementById("mt-sort-select");
    const searchBox = document.getElementById("mt-search");
    graded.forEach((m, i) => select.appendChild(OC.el("option", { value: String(i) }, m.label || m.model)));
    const turnNames = [...new Set(graded.flatMap((m) => m.questions.flatMap((q) => Object.keys(turnRatings(q)))))].sort();
    const rating = (q, t) => { const r = turnRatings(q)[t]; return r && typeof r.rating === "number" ? r.rating : null; };
    const mean = (q) => {
      const values = turnNames.map((t) => rating(q, t)).filter((v) => v !== null);
      return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
    };
    function render() {
      const m = graded[Number(select.value)] || graded[0];
      const q = searchBox.value.trim().toLowerCase();
      let rows = m.questions.filter((row_) => !q || JSON.stringify([row_.category, row_.question, row_.turns]).toLowerCase().includes(q));
      const num = (v, dflt) => (typeof v === "number" ? v : dflt);
      const byId = (a, b) => String(a.question_id).localeCompare(String(b.question_id), undefined, { numeric: true });
      rows = rows.slice().sort(byId);
      if (sort.value === "low") rows.sort((a, b) => num(mean(a), 99) - num(mean(b), 99));
      if (sort.value === "high") rows.sort((a, b) => num(mean(b), -1) - num(mean(a), -1));
      if (sort.value === "drop") {
        const drop = (x) => num(rating(x, turnNames[0]), 0) - num(rating(x, turnNames[turnNames.length - 1]), 0);
        rows.sort((a, b) => drop(b) - drop(a));
      }
      const table = document.getElementById("mt-questions");
      table.replaceChildren(row(["#", "Category", ...turnNames.map((t) => [`Turn ${t}`, "num"]), "Judge"], true));
      rows.forEach((row_) => {
        const tr = OC.el("tr", { "data-question": String(row_.question_id) });
        tr.appendChild(OC.el("td", null, String(row_.question_id ?? "")));
        tr.appendChild(OC.el("td", null, String(row_.category ?? "")));
        turnNames.forEach((t) => {
          const r = turnRatings(row_)[t];
          const failed = r && (r.error || typeof r.rating !== "number");
          tr.appendChild(OC.el("td", { class: "num grade" + (failed ? " failed" : "") }, failed ? "failed" : OC.fmt(r ? r.rating : null, 0)));
        });
        const td = tr.appendChild(OC.el("td", { class: "reviews" }));
        const details = td.appendChild(OC.el("details"));
        details.appendChild(OC.el("summary", null, "judge's reasons"));
        turnNames.forEach((t) => {
          const r = turnRatings(row_)[t];
          if (!r) return;
          const box = details.appendChild(OC.el("div", { class: "review" }));
          box.appendChild(OC.el("div", { class: "meta" }, `turn ${t}: ${typeof r.rating === "number" ? r.rating : "no grade"}`));
          if (r.error) box.appendChild(OC.el("div", { class: "error" }, `judge error: ${r.error}`));
          if (r.text) OC.renderMarkdown(r.text, box.appendChild(OC.el("div", { class: "md" })));
        });
        table.appendChild(tr);
      });
      document.getElementById("mt-question-count").textContent = `${rows.length} of ${m.questions.length} questions`;
    }
    [select, sort].forEach((node) => node.addEventListener("change", render));
    searchBox.addEventListener("input", render);
    render();
  }

  /* ------------------------------------------------------------------------------------------ questions */
  function turnsOf(value) {
    return Array.isArray(value) ? value.map((v) => String(v ?? "")) : [String(value ?? "")];
  }

  function markdownBlock(value, cls) {
    const box = OC.el("div", { class: cls });
    const turns = turnsOf(value);
    turns.forEach((text, i) => {
      if (turns.length > 1) box.appendChild(OC.el("div", { class: "turn-role" }, `Turn ${i + 1}`));
      OC.renderMarkdown(text, box.appendChild(OC.el("div", { class: "md" })));
    });
    return box;
  }

  function reviewScores(r, modelName, baseline) {
    let mine = r.model_score, theirs = r.baseline_score;
    if (!(typeof mine === "number" && typeof theirs === "number") && Array.isArray(r.scores) && r.scores.length === 2) {
      [mine, theirs] = r.order === "baseline_first" ? [r.scores[1], r.scores[0]] : [r.scores[0], r.scores[1]];
    }
    if (typeof mine !== "number" || typeof theirs !== "number") return "no scores";
    return `${modelName} ${OC.fmt(mine, 1)} · ${baseline} ${OC.fmt(theirs, 1)}`;
  }

  function reviewColumn(q, m, order) {
    const baseline = baselineOf(m);
    const col = OC.el("div", { class: "review-column", "data-order": order });
    const first = order === "baseline_first" ? baseline : m.model;
    const verdict = (q.order_outcomes || {})[order];
    col.appendChild(OC.el("h4", null, `Review with ${first}'s answer first` + (verdict ? ` · ${verdict} for ${m.model}` : "")));
    const reviews = (Array.isArray(q.reviews) ? q.reviews : []).filter((r) => r && (r.order || "model_first") === order);
    if (!reviews.length) col.appendChild(OC.el("div", { class: "meta" }, "no review in this order"));
    reviews.forEach((r) => {
      const box = col.appendChild(OC.el("div", { class: "review" }));
      box.appendChild(OC.el("div", { class: "meta" }, `sample ${r.sample ?? 0} · ${reviewScores(r, m.model, baseline)}` +
        (r.verdict_source ? ` · verdict read from ${r.verdict_source}` : "")));
      if (r.error) box.appendChild(OC.el("div", { class: "error" }, `judge error: ${r.error}`));
      if (r.text) OC.renderMarkdown(r.text, box.appendChild(OC.el("div", { class: "md" })));
    });
    return col;
  }

  function detailRow(q, m, span) {
    const tr = OC.el("tr", { class: "detail", "data-detail": String(q.question_id) });
    const td = tr.appendChild(OC.el("td", { colspan: String(span) }));
    td.appendChild(markdownBlock(q.question, "question-full"));
    const answers = td.appendChild(OC.el("div", { class: "side-by-side answers" }));
    const left = answers.appendChild(OC.el("div", { class: "answer model-answer" }));
    const words = (value) => turnsOf(value).join(" ").split(/\s+/).filter(Boolean).length;
    left.appendChild(OC.el("h4", null, `${m.model}'s answer`));
    left.appendChild(OC.el("div", { class: "meta words" }, `${words(q.answer)} words`));
    left.appendChild(markdownBlock(q.answer, "answer-body"));
    const right = answers.appendChild(OC.el("div", { class: "answer baseline-answer" }));
    right.appendChild(OC.el("h4", null, `${baselineOf(m)}'s answer (baseline)`));
    right.appendChild(OC.el("div", { class: "meta words" }, `${words(q.baseline_answer)} words`));
    right.appendChild(markdownBlock(q.baseline_answer, "answer-body"));
    if (q.verdict_source || q.protocol) {
      td.appendChild(OC.el("div", { class: "meta verdict-source" }, [q.protocol ? `protocol ${q.protocol}` : "",
        q.verdict_source ? `verdict read from the judge's ${q.verdict_source === "json" ? "JSON" : "text"}` : ""]
        .filter(Boolean).join(" · ")));
    }
    const reviews = td.appendChild(OC.el("div", { class: "side-by-side reviews" }));
    reviews.appendChild(reviewColumn(q, m, "model_first"));
    reviews.appendChild(reviewColumn(q, m, "baseline_first"));
    return tr;
  }

  function preview(value) {
    const flat = turnsOf(value).join(" / ").replace(/\s+/g, " ").trim();
    return flat.length > 140 ? flat.slice(0, 140) + "…" : flat;
  }

  function questions() {
    const modelSelect = document.getElementById("model-select");
    const categorySelect = document.getElementById("category-select");
    const outcomeSelect = document.getElementById("outcome-select");
    const disagreeOnly = document.getElementById("disagree-only");
    const sortSelect = document.getElementById("sort-select");
    const searchBox = document.getElementById("question-search");
    const open = new Set();
    models.forEach((m, i) => modelSelect.appendChild(OC.el("option", { value: String(i) }, m.label)));
    const haystacks = new Map();
    const haystack = (q) => {
      if (!haystacks.has(q)) {
        haystacks.set(q, JSON.stringify([q.question_id, q.category, q.question, q.answer, q.baseline_answer,
          (q.reviews || []).map((r) => r && r.text)]).toLowerCase());
      }
      return haystacks.get(q);
    };
    function fillCategories() {
      const m = models[Number(modelSelect.value)] || { questions: [] };
      const keep = categorySelect.value;
      categorySelect.replaceChildren(OC.el("option", { value: "" }, "all"));
      [...new Set(m.questions.map((q) => String(q.category ?? "")))].sort()
        .forEach((c) => categorySelect.appendChild(OC.el("option", { value: c }, c || "(none)")));
      categorySelect.value = keep;
      if (categorySelect.value !== keep) categorySelect.value = "";
    }
    const gap = (q) => (typeof q.model_score === "number" && typeof q.baseline_score === "number" ? q.model_score - q.baseline_score : null);
    const byId = (a, b) => String(a.question_id).localeCompare(String(b.question_id), undefined, { numeric: true });
    function sorted(rows) {
      const out = rows.slice().sort(byId);
      const key = sortSelect.value;
      if (key === "gap-asc") out.sort((a, b) => (gap(a) ?? Infinity) - (gap(b) ?? Infinity));
      if (key === "gap-desc") out.sort((a, b) => (gap(b) ?? -Infinity) - (gap(a) ?? -Infinity));
      if (key === "disagree") {
        const rank = (q) => ({ flip: 0, partial: 1 })[q.agreement] ?? 2;
        out.sort((a, b) => rank(a) - rank(b));
      }
      if (key === "category") out.sort((a, b) => String(a.category ?? "").localeCompare(String(b.category ?? "")));
      return out;
    }
    const COLUMNS = 7;
    function render() {
      const m = models[Number(modelSelect.value)];
      const table = document.getElementById("questions");
      table.replaceChildren(row(["#", "Category", "Question", [`${m ? m.model : "model"} / ${m ? baselineOf(m) : "baseline"}`, "num"],
        "Outcome", "Judging orders", ""], true));
      if (!m) return;
      const query = searchBox.value.trim().toLowerCase();
      const rows = sorted(m.questions.filter((q) => (!categorySelect.value || String(q.category ?? "") === categorySelect.value) &&
        (!outcomeSelect.value || q.outcome === outcomeSelect.value) && (!disagreeOnly.checked || q.orders_disagree) &&
        (!query || haystack(q).includes(query))));
      rows.forEach((q) => {
        const outcome = ["win", "tie", "loss", "failed"].includes(q.outcome) ? q.outcome : "failed";
        const key = `${m.label}\u0000${q.question_id}`;
        const tr = OC.el("tr", { class: "question-row" + (outcome === "failed" ? " failed" : "") + (q.orders_disagree ? " disagree" : ""),
          "data-question": String(q.question_id), tabindex: "0" });
        tr.appendChild(OC.el("td", null, String(q.question_id ?? "")));
        tr.appendChild(OC.el("td", null, String(q.category ?? "")));
        tr.appendChild(OC.el("td", { class: "question" }, preview(q.question)));
        tr.appendChild(OC.el("td", { class: "num scores" }, `${OC.fmt(q.model_score, 2)} / ${OC.fmt(q.baseline_score, 2)}`));
        tr.appendChild(OC.el("td", { class: "outcome" }))
          .appendChild(OC.el("span", { class: "badge " + outcome }, outcome === "failed" ? "judge failed" : outcome));
        const orders = tr.appendChild(OC.el("td", { class: "orders" }));
        if (q.agreement) {
          orders.appendChild(OC.el("span", { class: "badge order-" + q.agreement }, AGREEMENT[q.agreement] || q.agreement));
          const oo = q.order_outcomes || {};
          if (oo.model_first && oo.baseline_first) {
            orders.appendChild(OC.el("div", { class: "meta" }, `${m.model} first: ${oo.model_first} · ${baselineOf(m)} first: ${oo.baseline_first}`));
          }
        }
        tr.appendChild(OC.el("td", { class: "toggle meta" }, open.has(key) ? "▾ hide" : "▸ read"));
        table.appendChild(tr);
        if (open.has(key)) table.appendChild(detailRow(q, m, COLUMNS));
        const toggle = () => { if (open.has(key)) open.delete(key); else open.add(key); render(); };
        tr.addEventListener("click", toggle);
        tr.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); toggle(); } });
      });
      document.getElementById("question-count").textContent = `${rows.length} of ${m.questions.length} questions`;
    }
    modelSelect.addEventListener("change", () => { fillCategories(); render(); });
    [categorySelect, outcomeSelect, disagreeOnly, sortSelect].forEach((n) => n.addEventListener("change", render));
    let timer = null;
    searchBox.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(render, 120); });
    fillCategories();
    render();
    return { render: render, open: open };
  }

  const failures = [];
  const pairwise = [header, runsTable, relativeChart, winRateChart, wtlChart, bias, categories, mtBench, questions];
  const sections = models.length ? pairwise : [header, mtBench];
  if (!models.length) {  // an MT-bench-only report: no pairwise sections
    document.querySelectorAll("main > section:not(#mt-bench-section)").forEach((s) => s.classList.add("hidden"));
  }
  const api = { data: data, failures: failures };
  for (const section of sections) {
    try {
      const result = section();
      if (section === questions) api.questions = result;
    } catch (err) { // one broken section never takes the rest of the page down
      failures.push(`${section.name}: ${err.message}`);
      console.warn("openchat-hf eval page:", section.name, err);
    }
  }
  api.renderedAt = performance.now();
  window.ocEval = api;
})();
