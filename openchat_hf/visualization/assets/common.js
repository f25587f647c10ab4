/* openchat-hf pages: shared helpers. Untrusted text is only ever put in the DOM with textContent / createTextNode;
   this file never uses innerHTML, document.write or eval. */
"use strict";
(function () {
  const OC = {};

  OC.el = function (tag, attrs, text) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [key, value] of Object.entries(attrs)) {
        if (key === "class") node.className = value;
        else node.setAttribute(key, value);
      }
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };

  OC.readData = function (id) {
    return JSON.parse(document.getElementById(id).textContent);
  };

  /* Text for plotly labels: plotly parses a small HTML subset in labels, so escape it. */
  OC.escapeLabel = function (text) {
    return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
  };

  OC.fmt = function (value, digits, suffix) {
    if (typeof value !== "number" || !isFinite(value)) return "—";
    return value.toFixed(digits === undefined ? 1 : digits) + (suffix || "");
  };

  /* ---------------------------------------------------------------- Markdown (safe subset, DOM only) */
  const SAFE_URL = /^(https?:\/\/|mailto:)/i;

  function safeHref(url) {
    const trimmed = url.trim();
    if (!SAFE_URL.test(trimmed)) return null;
    try {
      const parsed = new URL(trimmed);
      return ["http:", "https:", "mailto:"].includes(parsed.protocol) ? parsed.href : null;
    } catch (err) {
      return null;
    }
  }

  const INLINE = [
    { re: /`([^`\n]+)`/, make: (m) => OC.el("code", null, m[1]) },
    { re: /!\[([^\]\n]*)\]\(([^)\s]*)\)/, make: (m) => document.createTextNode("[image: " + m[1] + "]") },
    {
      re: /\[([^\]\n]+)\]\(([^)\s]*)\)/,
      make: (m) => {
        const href = safeHref(m[2]);
        if (!href) return document.createTextNode(m[0]); // unsafe or relative URL: show the Markdown as text
        const a = OC.el("a", { href: href, rel: "noopener noreferrer nofollow", target: "_blank" });
        inline(m[1], a);
        return a;
      },
    },
    // Emphasis needs non-space inside the delimiters; underscores never work inside words (CommonMark).
    { re: /\*\*(\S(?:[^*\n]*?\S)?)\*\*|(?<!\w)__(\S(?:[^_\n]*?\S)?)__(?!\w)/, make: (m) => wrap("strong", m[1] || m[2]) },
    { re: /\*(\S(?:[^*\n]*?\S)?)\*|(?<!\w)_(\S(?:[^_\n]*?\S)?)_(?!\w)/, make: (m) => wrap("em", m[1] || m[2]) },
    { re: /~~([^~\n]+?)~~/, make: (m) => wrap("del", m[1]) },
    {
      re: /\bhttps?:\/\/[^\s<>()"']+[^\s<>()"'.,;:!?]/,
      make: (m) => {
        const href = safeHref(m[0]);
        return href ? OC.el("a", { href: href, rel: "noopener noreferrer nofollow", target: "_blank" }, m[0])
          : document.createTextNode(m[0]);
      },
    },
  ];

  function wrap(tag, text) {
    const node = OC.el(tag);
    inline(text, node);
    return node;
  }

  function inline(text, parent) {
    let rest = text;
    while (rest) {
      let best = null;
      for (const rule of INLINE) {
        const m = rule.re.exec(rest);
        if (m && (best === null || m.index < best.m.index)) best = { m: m, rule: rule };
      }
      if (!best) {
        parent.appendChild(document.createTextNode(rest));
        return;
      }
      if (best.m.index > 0) parent.appendChild(document.createTextNode(rest.slice(0, best.m.index)));
      parent.appendChild(best.rule.make(best.m));
      rest = rest.slice(best.m.index + best.m[0].length);
    }
  }

  function inlineLines(lines, parent) {
    lines.forEach((line, i) => {
      if (i > 0) parent.appendChild(OC.el("br"));
      inline(line, parent);
    });
  }

  const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
  const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const LIST_ITEM = /^(\s*)([-*+]|\d{1,9}[.)])\s+(.*)$/;
  const QUOTE = /^\s{0,3}>\s?(.*)$/;
  const RULE = /^\s{0,3}([-*_])(\s*\1){2,}\s*$/;
  const TABLE_SEP = /^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$/;

  function isBlockStart(line, next) {
    return FENCE.test(line) || HEADING.test(line) || LIST_ITEM.test(line) || QUOTE.test(line) || RULE.test(line) ||
      (line.includes("|") && next !== undefined && TABLE_SEP.test(next) && next.includes("-"));
  }

  function splitRow(line) {
    let cells = line.trim();
    if (cells.startsWith("|")) cells = cells.slice(1);
    if (cells.endsWith("|")) cells = cells.slice(0, -1);
    return cells.split("|").map((c) => c.trim());
  }

  function renderList(lines, start, parent) {
    // Consecutive list items (and their indented continuation lines); nesting by indentation.
    const first = LIST_ITEM.exec(lines[start]);
    const baseIndent = first[1].length;
    const ordered = /\d/.test(first[2]);
    const list = OC.el(ordered ? "ol" : "ul");
    if (ordered && parseInt(first[2], 10) !== 1) list.setAttribute("start", String(parseInt(first[2], 10)));
    let i = start;
    let item = null;
    while (i < lines.length) {
      const line = lines[i];
      const m = LIST_ITEM.exec(line);
      if (m && m[1].length === baseIndent) {
        item = OC.el("li");
        list.appendChild(item);
        inline(m[3], item);
        i += 1;
      } else if (m && m[1].length > baseIndent && item) {
        i = renderList(lines, i, item);
      } else if (line.trim() && /^\s+/.test(line) && item && !FENCE.test(line)) {
        item.appendChild(OC.el("br"));
        inline(line.trim(), item);
        i += 1;
      } else {
        break;
      }
    }
    parent.appendChild(list);
    return i;
  }

  /* Render Markdown text into `parent` (code blocks, headings, lists, quotes, tables, inline code/links/emphasis). */
  OC.renderMarkdown = function (text, parent) {
    const lines = String(text === null || text === undefined ? "" : text).replace(/\r\n?/g, "\n").split("\n");
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      let m;
      if (!line.trim()) {
        i += 1;
      } else if ((m = FENCE.exec(line))) {
        const fence = m[1];
        const body = [];
        i += 1;
        while (i < lines.length && !(lines[i].trim().startsWith(fence[0].repeat(fence.length)) &&
                                     lines[i].trim().replace(/[`~]/g, "") === "")) {
          body.push(lines[i]);
          i += 1;
        }
        i += 1; // closing fence (or end of text)
        const pre = OC.el("pre");
        const code = OC.el("code", m[2] ? { class: "language-" + m[2].replace(/[^\w+#.-]/g, "") } : null);
        code.textContent = body.join("\n");
        if (m[2]) pre.appendChild(OC.el("span", { class: "code-lang" }, m[2]));
        pre.appendChild(code);
        parent.appendChild(pre);
      } else if ((m = HEADING.exec(line))) {
        parent.appendChild(wrap("h" + Math.min(6, m[1].length + 2), m[2]));
        i += 1;
      } else if (RULE.test(line)) {
        parent.appendChild(OC.el("hr"));
        i += 1;
      } else if (LIST_ITEM.test(line)) {
        i = renderList(lines, i, parent);
      } else if (QUOTE.test(line)) {
        const body = [];
        while (i < lines.length && (m = QUOTE.exec(lines[i]))) {
          body.push(m[1]);
          i += 1;
        }
        const quote = OC.el("blockquote");
        OC.renderMarkdown(body.join("\n"), quote);
        parent.appendChild(quote);
      } else if (line.includes("|") && i + 1 < lines.length && TABLE_SEP.test(lines[i + 1]) && lines[i + 1].includes("-")) {
        const table = OC.el("table", { class: "md-table" });
        const head = OC.el("tr");
        splitRow(line).forEach((c) => head.appendChild(wrap("th", c)));
        table.appendChild(OC.el("thead")).appendChild(head);
        const tbody = table.appendChild(OC.el("tbody"));
        i += 2;
        while (i < lines.length && lines[i].includes("|") && lines[i].trim()) {
          const row = OC.el("tr");
          splitRow(lines[i]).forEach((c) => row.appendChild(wrap("td", c)));
          tbody.appendChild(row);
          i += 1;
        }
        parent.appendChild(table);
      } else {
        const para = [];
        while (i < lines.length && lines[i].trim() && (para.length === 0 || !isBlockStart(lines[i], lines[i + 1]))) {
          para.push(lines[i]);
          i += 1;
        }
        const p = OC.el("p");
        inlineLines(para, p);
        parent.appendChild(p);
      }
    }
    return parent;
  };

  /* ---------------------------------------------------------------- rendered conversations -> turns */
  /* modelTypes: {name: {user, assistant, system, eot}}; the chosen type's prefixes are tried first. */
  OC.prefixTable = function (modelTypes, preferred) {
    const names = Object.keys(modelTypes);
    names.sort((a, b) => (a === preferred ? -1 : b === preferred ? 1 : a.localeCompare(b)));
    const table = [];
    for (const name of names) {
      const mt = modelTypes[name];
      const group = [["system", mt.system], ["user", mt.user], ["assistant", mt.assistant]]
        .filter(([, prefix]) => prefix && !table.some(([, p]) => p === prefix));
      group.sort((a, b) => b[1].length - a[1].length);
      table.push(...group);
    }
    return table;
  };

  OC.parseConversation = function (text, modelTypes, preferred) {
    const table = OC.prefixTable(modelTypes, preferred);
    const eots = [...new Set(Object.values(modelTypes).map((mt) => mt.eot))];
    const primary = (modelTypes[preferred] || Object.values(modelTypes)[0]).eot;
    let segments = String(text).split(primary);
    if (segments.length === 1) {
      for (const eot of eots) if (text.includes(eot)) { segments = text.split(eot); break; }
    }
    const turns = [];
    segments.forEach((segment, i) => {
      if (i === 0 && !table.some(([, p]) => segment.startsWith(p))) segment = segment.replace(/^<[^<>\s]{1,32}>/, "");
      if (!segment.trim()) return;
      const hit = table.find(([, p]) => segment.startsWith(p));
      if (hit) turns.push({ role: hit[0], prefix: hit[1], content: segment.slice(hit[1].length) });
      else turns.push({ role: "text", prefix: "", content: segment });
    });
    return turns;
  };

  OC.ROLE_LABELS = { user: "User", assistant: "Assistant", system: "System", text: "Text" };

  OC.renderTurns = function (turns, parent) {
    for (const turn of turns) {
      const box = OC.el("div", { class: "turn role-" + turn.role });
      const label = OC.el("div", { class: "turn-role" }, OC.ROLE_LABELS[turn.role] || turn.role);
      if (turn.prefix) label.appendChild(OC.el("span", { class: "turn-prefix" }, turn.prefix.trim()));
      box.appendChild(label);
      OC.renderMarkdown(turn.content, box.appendChild(OC.el("div", { class: "turn-body md" })));
      parent.appendChild(box);
    }
    return parent;
  };

  OC.downloadSvgButton = function () {
    return {
      name: "downloadSvg",
      title: "Download plot as SVG",
      icon: Plotly.Icons.disk,
      click: (gd) => Plotly.downloadImage(gd, { format: "svg", filename: "openchat-hf-plot" }),
    };
  };

  window.OC = OC;
})();
