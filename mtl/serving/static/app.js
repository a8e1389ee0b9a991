// klue-mtl demo page: calls the server's own JSON API and draws the results. No dependencies.
"use strict";

const NS = "http://www.w3.org/2000/svg";
const NER_NAMES = { PS: "person", LC: "location", OG: "organization", DT: "date", TI: "time", QT: "quantity" };
// KLUE-NER types -> the nearest KLUE-RE entity type (RE knows PER, ORG, LOC, DAT, POH, NOH).
const NER_TO_RE = { PS: "PER", OG: "ORG", LC: "LOC", DT: "DAT", TI: "DAT", QT: "NOH" };
const RE_TYPES = ["PER", "ORG", "LOC", "DAT", "POH", "NOH"];

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

async function api(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) {
    const detail = typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail);
    throw new Error(`${response.status}: ${detail}`);
  }
  return data;
}

// -- rendering -------------------------------------------------------------------------------------
function renderProbs(container, result) {
  container.replaceChildren();
  const entries = Object.entries(result.probs).sort((a, b) => b[1] - a[1]);
  for (const [name, p] of entries) {
    const fill = el("div", { class: "fill" });
    fill.style.width = `${Math.max(1, p * 100).toFixed(1)}%`;
    const row = el("div", { class: `bar${name === result.label ? " top" : ""}`, "data-label": name },
      el("span", {}, name), el("div", {}, fill), el("span", {}, `${(p * 100).toFixed(1)}%`));
    container.append(row);
  }
}

function renderEntities(container, text, entities) {
  container.replaceChildren();
  let at = 0;
  for (const e of entities) {
    if (e.start > at) container.append(text.slice(at, e.start));
    const mark = el("mark", {
      class: `ent ent-${e.type}`, title: NER_NAMES[e.type] || e.type,
      "data-type": e.type, "data-start": e.start, "data-end": e.end,
    }, el("span", { class: "ent-text" }, text.slice(e.start, e.end)), el("sup", {}, e.type));
    container.append(mark);
    at = e.end;
  }
  if (at < text.length) container.append(text.slice(at));
}

function renderLegend(container) {
  container.replaceChildren();
  for (const [type, name] of Object.entries(NER_NAMES)) {
    const chip = el("span", {}, `${type} ${name}`);
    chip.style.background = `var(--${type})`;
    container.append(chip);
  }
}

// The height (in steps) of each word's arc, 0 for the root: every arc is higher than the arcs it
// spans, and arcs whose word ranges meet (sharing a word included) never share a height. The label
// sits at the apex, so labels on one height belong to arcs at least one word apart and never touch;
// equal spans alone (the first layout) put the labels of crossing or neighbouring arcs on top of
// each other.
function arcLevels(heads) {
  const arcs = heads
    .map((head, i) => ({ i, lo: Math.min(i + 1, head), hi: Math.max(i + 1, head) }))
    .filter((a) => heads[a.i] !== 0)
    .sort((a, b) => a.hi - a.lo - (b.hi - b.lo) || a.lo - b.lo);
  const levels = heads.map(() => 0), placed = [];
  for (const a of arcs) {
    let level = 1 + Math.max(0, ...placed.filter((b) => a.lo <= b.lo && b.hi <= a.hi).map((b) => levels[b.i]));
    while (placed.some((b) => levels[b.i] === level && b.lo <= a.hi && a.lo <= b.hi)) level += 1;
    levels[a.i] = level;
    placed.push(a);
  }
  return levels;
}

// The dependency tree: eojeols on a baseline, one arc per word from its head, the label at its apex.
function renderTree(container, parse) {
  container.replaceChildren();
  const gap = 26, pad = 16, step = 28, base = 40;
  const root = svg("svg", { class: "dp", role: "img", "aria-label": "dependency tree" });
  container.append(root);
  const xs = [], widths = [];
  let x = pad;
  parse.words.forEach((word, i) => {
    const t = svg("text", { class: "word", "data-index": i + 1, "text-anchor": "middle" }, word);
    root.append(t);
    const w = Math.max(t.getComputedTextLength ? t.getComputedTextLength() : word.length * 16, 24);
    widths.push(w);
    xs.push(x + w / 2);
    x += w + gap;
  });
  const levels = arcLevels(parse.heads);
  const top = 24 + Math.max(1, ...levels) * step; // tallest arc, ROOT line drawn from above it
  const baseline = top + base;
  root.setAttribute("width", x + pad);
  root.setAttribute("height", baseline + 24);
  root.querySelectorAll("text.word").forEach((t, i) => {
    t.setAttribute("x", xs[i]);
    t.setAttribute("y", baseline);
    root.append(svg("text", { class: "index", x: xs[i], y: baseline + 16, "text-anchor": "middle" }, String(i + 1)));
  });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
  marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#5d7bd6" }));
  defs.append(marker);
  root.prepend(defs);
  const foot = baseline - 20;
  parse.heads.forEach((head, i) => {
    const dep = i + 1, label = parse.deprels[i];
    if (head === 0) {
      root.append(svg("path", { class: "arc root", d: `M${xs[i]},6 L${xs[i]},${foot}`, "data-dep": dep, "data-head": 0, "data-label": label, "marker-end": "url(#arrow)" }));
      root.append(svg("text", { class: "arc-label root", x: xs[i] + 4, y: 18, "data-dep": dep }, `ROOT · ${label}`));
      return;
    }
    const x1 = xs[head - 1] + (dep > head ? 4 : -4), x2 = xs[i] + (dep > head ? -4 : 4);
    const height = levels[i] * step;
    const y = foot - height;
    root.append(svg("path", {
      class: "arc", d: `M${x1},${foot} C${x1},${y} ${x2},${y} ${x2},${foot}`,
      "data-dep": dep, "data-head": head, "data-label": label, "marker-end": "url(#arrow)",
    }));
    root.append(svg("text", { class: "arc-label", x: (x1 + x2) / 2, y: y + height * 0.25 - 2, "text-anchor": "middle", "data-dep": dep }, label));
  });
}

// -- the analyze form ------------------------------------------------------------------------------
async function analyze(event) {
  event.preventDefault();
  const text = $("#analyze-text").value;
  const error = $("#analyze-error");
  error.hidden = true;
  $("#analyze-button").disabled = true;
  try {
    const data = await api("/v1/analyze", { text });
    const r = data.results;
    $("#analyze-results").hidden = false;
    if (r.ynat) renderProbs($("#topic"), r.ynat);
    if (r.ner) { renderEntities($("#ner"), text, r.ner.entities); renderLegend($("#ner-legend")); }
    if (r.dp) renderTree($("#dp"), r.dp);
    const extra = $("#extra");
    extra.replaceChildren();
    for (const [task, result] of Object.entries(r)) {
      if (["ynat", "ner", "dp"].includes(task)) continue;
      extra.append(el("h3", {}, task), el("pre", {}, JSON.stringify(result)));
    }
    document.body.dataset.analyzed = "true"; // the browser test waits for this
  } catch (err) {
    error.textContent = err.message;
    error.hidden = false;
  } finally {
    $("#analyze-button").disabled = false;
  }
}

// -- the per-task forms ----------------------------------------------------------------------------
const re = { subject: null, object: null, next: "subject" };

function setRole(role, start, end, type) {
  const sentence = $("form[data-task=re] [name=sentence]").value;
  re[role] = { start, end }; // end exclusive here; the request sends KLUE's inclusive end
  $(`#re-${role}`).textContent = `${sentence.slice(start, end)} [${start}, ${end - 1}]`;
  if (type) $(`#re-${role}-type`).value = type;
  re.next = role === "subject" ? "object" : "subject";
}

async function findEntities() {
  const sentence = $("form[data-task=re] [name=sentence]").value;
  const chips = $("#re-chips");
  chips.replaceChildren();
  try {
    const { results } = await api("/v1/predict/ner", { inputs: [sentence] });
    for (const e of results[0].entities) {
      const chip = el("span", { class: "chip", title: "click: use for the next role" }, `${e.text} · ${e.type}`);
      chip.addEventListener("click", () => setRole(re.next, e.start, e.end, NER_TO_RE[e.type] || "POH"));
      chips.append(chip);
    }
    if (!results[0].entities.length) chips.append("no entities found: select them in the sentence");
  } catch (err) {
    chips.append(err.message);
  }
}

function useSelection(role) {
  const box = $("form[data-task=re] [name=sentence]");
  if (box.selectionEnd > box.selectionStart) setRole(role, box.selectionStart, box.selectionEnd);
}

function requestFor(task, form) {
  const v = (name) => form.elements[name].value;
  switch (task) {
    case "nli": return [v("premise"), v("hypothesis")];
    case "sts": return [v("sentence1"), v("sentence2")];
    case "mrc": return { question: v("question"), context: v("context") };
    case "wos": return v("turns").split("\n").map((t) => t.trim()).filter(Boolean);
    case "re": {
      if (!re.subject || !re.object) throw new Error("pick a subject and an object first");
      return {
        sentence: v("sentence"),
        subject: [re.subject.start, re.subject.end - 1, $("#re-subject-type").value],
        object: [re.object.start, re.object.end - 1, $("#re-object-type").value],
      };
    }
  }
  throw new Error(`no form for ${task}`);
}

function showResult(task, input, result, box) {
  box.replaceChildren();
  if (result.probs) {
    const probs = el("div");
    renderProbs(probs, result);
    box.append(el("div", { class: "label" }, result.label), probs);
  } else if (task === "sts") {
    box.append(el("div", { class: "label" }, `similarity ${result.score.toFixed(3)}`), el("div", { class: "hint" }, "0 = unrelated … 5 = same meaning"));
  } else if (task === "mrc") {
    const p = el("p");
    if (result.start === null) p.append(el("strong", {}, "unanswerable"), " — ", input.context);
    else p.append(input.context.slice(0, result.start), el("mark", { class: "answer" }, result.answer), input.context.slice(result.end));
    box.append(el("div", { class: "label" }, result.answer || "(no answer)"), p);
  } else if (task === "wos") {
    const list = el("ul", { class: "state" });
    for (const s of result.state) list.append(el("li", {}, s));
    box.append(el("div", { class: "label" }, `state after turn ${result.turn}`), result.state.length ? list : "(empty)");
  } else {
    box.append(el("pre", {}, JSON.stringify(result, null, 1)));
  }
}

async function submitTask(event) {
  event.preventDefault();
  const form = event.currentTarget, task = form.dataset.task, box = $(`#${task}-result`);
  try {
    const input = requestFor(task, form);
    const { results } = await api(`/v1/predict/${task}`, { inputs: [input] });
    showResult(task, input, results[0], box);
  } catch (err) {
    box.replaceChildren(el("p", { class: "error" }, err.message));
  }
}

function fillExamples(tasks) {
  const byName = Object.fromEntries(tasks.map((t) => [t.name, t]));
  document.querySelectorAll("section[data-task]").forEach((section) => {
    if (!byName[section.dataset.task]) section.hidden = true; // the checkpoint has no such head
  });
  const form = (task) => $(`form[data-task=${task}]`);
  const set = (task, name, value) => { if (form(task)) form(task).elements[name].value = value; };
  if (byName.nli) { set("nli", "premise", byName.nli.example[0]); set("nli", "hypothesis", byName.nli.example[1]); }
  if (byName.sts) { set("sts", "sentence1", byName.sts.example[0]); set("sts", "sentence2", byName.sts.example[1]); }
  if (byName.mrc) { set("mrc", "question", byName.mrc.example.question); set("mrc", "context", byName.mrc.example.context); }
  if (byName.wos) set("wos", "turns", byName.wos.example.join("\n"));
  if (byName.re) {
    const ex = byName.re.example;
    set("re", "sentence", ex.sentence);
    setRole("subject", ex.subject[0], ex.subject[1] + 1, ex.subject[2]);
    setRole("object", ex.object[0], ex.object[1] + 1, ex.object[2]);
  }
}

async function init() {
  for (const role of ["subject", "object"]) {
    const select = $(`#re-${role}-type`);
    for (const t of RE_TYPES) select.append(el("option", { value: t }, t));
  }
  $("#analyze-form").addEventListener("submit", analyze);
  document.querySelectorAll("form.task-form").forEach((f) => f.addEventListener("submit", submitTask));
  $("#re-find").addEventListener("click", findEntities);
  $("#re-use-subject").addEventListener("click", () => useSelection("subject"));
  $("#re-use-object").addEventListener("click", () => useSelection("object"));
  const status = $("#status");
  for (;;) { // wait for /readyz: the server answers before the model has loaded
    try {
      const ready = await api("/readyz");
      status.textContent = `ready · ${ready.tasks.length} tasks`;
      status.classList.add("ready");
      break;
    } catch (err) {
      status.textContent = err.message.startsWith("503") ? "loading the model…" : err.message;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  const { tasks, analyze: analyzed } = await api("/v1/tasks");
  if (!analyzed.length) $("#analyze-section").hidden = true;
  fillExamples(tasks);
  document.body.dataset.ready = "true";
}

init();
