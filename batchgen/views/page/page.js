/* The batchgen dashboard: one page for `batchgen serve` (live, over server-sent events) and
   `batchgen report` (a static snapshot, the same data embedded in #bg-data).
   Every string shown is user data (prompts, parameters, errors): the DOM is built with
   createElement and textContent only, never from markup, so a prompt's markup stays text. */
(function () {
  "use strict";
  var state = { items: {}, order: [], figures: null, seq: 0, inputs: {} };  /* inputs: file -> links */
  var cards = {};
  var embedded = document.getElementById("bg-data");
  var staticData = embedded ? JSON.parse(embedded.textContent) : null;
  var live = !staticData;
  var gridTimer = null;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }
  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }
  function show(value) {
    if (value === null || value === undefined) { return "(none)"; }
    if (typeof value === "string") { return value; }
    if (typeof value === "number" || typeof value === "boolean") { return String(value); }
    return JSON.stringify(value);
  }
  function key(value) { return value === undefined ? "\u0000absent" : JSON.stringify(value); }
  function short(text, width) {
    return text.length <= width ? text : text.slice(0, width - 1) + "\u2026";
  }
  function num(value, digits, unit) {
    if (value === null || value === undefined) { return "\u2014"; }
    return Number(value).toFixed(digits) + (unit || "");
  }
  function duration(seconds) {
    if (seconds === null || seconds === undefined) { return "\u2014"; }
    var s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h ? h + "h" + String(m).padStart(2, "0") + "m" : m + "m" + String(s % 60).padStart(2, "0") + "s";
  }
  function cssUrl(url) { return 'url("' + String(url).replace(/["\\\n\r]/g, "") + '")'; }

  /* ---- data in ---- */
  function setFigures(figures) {
    state.figures = figures;
    state.seq = figures.seq;
    document.getElementById("counts").textContent = figures.text.counts;
    document.getElementById("failures-title").textContent = figures.text.failures;
    renderGlance(figures.glance, figures.throughput);
    renderShards(figures.shards);
    renderFailures(figures.failures);
    renderSummary(figures.summary);
    var cut = document.getElementById("cut"), held = state.order.length;
    cut.hidden = !(figures.finished > held);
    cut.textContent = "this page holds the newest " + held + " of " + figures.finished +
      " finished jobs (those before it connected are left out; the sweep grid has them all)";
  }
  function addItems(items) {
    var changed = false;
    items.forEach(function (item) {
      if (!state.items[item.id]) { state.order.push(item.id); }
      state.items[item.id] = item;
      (item.inputs || []).forEach(function (i) { if (i.thumb || i.url) { state.inputs[i.file] = i; } });
      changed = true;
    });
    if (changed) { renderGallery(); scheduleGrid(); }
    var cut = document.getElementById("cut");
    if (state.figures) { cut.hidden = !(state.figures.finished > state.order.length); }
  }

  /* ---- the run at a glance ---- */
  function renderGlance(g, chart) {
    var tiles = document.getElementById("tiles");
    clear(tiles);
    var spend = "$" + num(g.spend_usd, 2);
    if (g.projected_usd !== null) { spend += " of ~$" + num(g.projected_usd, 2); }
    if (g.budget_usd !== null) { spend += " (budget $" + num(g.budget_usd, 2) + ")"; }
    [
      [g.jobs ? "done of " + g.jobs : "done", g.completed, "done"], ["failed", g.failed, "failed"],
      ["in flight", g.in_flight, "in-flight"], ["waiting", g.waiting, "waiting"],
      ["images/min", num(g.images_per_minute, 1), "rate"], ["ETA", duration(g.eta_seconds), "eta"],
      ["spend", spend, "spend"], ["429s", num(g.rate_limited, 0), "rate-limited"],
      ["retries", num(g.retries, 0), "retries"], ["calls/job", num(g.api_calls_per_job, 2), "calls"],
      ["latency p50", num(g.latency_p50, 2, " s"), "p50"], ["latency p95", num(g.latency_p95, 2, " s"), "p95"]
    ].forEach(function (t) {
      var tile = el("div", "tile");
      var b = el("b", null, t[1]);
      b.id = "g-" + t[2];
      tile.appendChild(b);
      tile.appendChild(el("span", null, t[0]));
      tiles.appendChild(tile);
    });
    var svg = document.getElementById("chart");
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var counts = chart.counts, top = Math.max.apply(null, [1].concat(counts));
    var w = 480 / Math.max(counts.length, 1);
    counts.forEach(function (n, i) {
      var r = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      var h = Math.round((n / top) * 66);
      r.setAttribute("x", String(i * w)); r.setAttribute("width", String(Math.max(1, w - 1)));
      r.setAttribute("y", String(70 - h)); r.setAttribute("height", String(h));
      var tip = document.createElementNS("http://www.w3.org/2000/svg", "title");
      tip.textContent = n + " images";
      r.appendChild(tip);
      svg.appendChild(r);
    });
    document.getElementById("chart-note").textContent = counts.length
      ? "images per " + chart.bucket_seconds + " s (peak " + top + "); figures from " + g.source
      : "no images yet; figures from " + g.source;
  }

  function renderShards(shards) {
    var box = document.getElementById("shards");
    box.hidden = shards.length === 0;
    var table = document.getElementById("shard-table");
    clear(table);
    table.className = "boxed";
    var rows = shards.map(function (s) { return [s.label, s.glance]; });
    if (shards.length) { rows.push(["whole", state.figures.glance]); }
    var head = el("tr");
    ["shard", "done", "failed", "in flight", "waiting", "images/min", "spend"].forEach(function (h) {
      head.appendChild(el("th", null, h));
    });
    table.appendChild(head);
    rows.forEach(function (r) {
      var tr = el("tr", "shard-row");
      [r[0], r[1].completed, r[1].failed, r[1].in_flight, r[1].waiting,
       num(r[1].images_per_minute, 1), "$" + num(r[1].spend_usd, 2)].forEach(function (v) {
        tr.appendChild(el("td", null, v));
      });
      table.appendChild(tr);
    });
  }

  /* ---- gallery and filters ---- */
  function done() {
    return state.order.map(function (id) { return state.items[id]; })
      .filter(function (i) { return i.state === "completed" && i.url; });
  }
  function varying(items) {
    var values = {}, names = [];
    items.forEach(function (i) {
      Object.keys(i.params).forEach(function (n) {
        if (!values[n]) { values[n] = {}; names.push(n); }
        values[n][key(i.params[n])] = i.params[n];
      });
    });
    var out = {};
    names.forEach(function (n) {
      var keys = Object.keys(values[n]);
      var absent = items.some(function (i) { return !(n in i.params); });
      if (keys.length > 1 || absent) {
        out[n] = keys.map(function (k) { return [k, values[n][k]]; }).sort(order);
      }
    });
    return out;
  }
  function order(a, b) {
    var x = a[1], y = b[1];
    var nx = typeof x === "number", ny = typeof y === "number";
    if (nx && ny) { return x - y; }
    if (nx !== ny) { return nx ? -1 : 1; }
    return show(x) < show(y) ? -1 : show(x) > show(y) ? 1 : 0;
  }

  function renderGallery() {
    var items = done();
    var filters = varying(items);
    var selects = document.getElementById("selects");
    var chosen = {};
    Array.prototype.forEach.call(selects.querySelectorAll("select"), function (s) {
      chosen[s.getAttribute("data-param")] = s.value;
    });
    clear(selects);
    Object.keys(filters).forEach(function (name) {
      var label = el("label", null, name + " ");
      var select = el("select");
      select.setAttribute("data-param", name);
      select.appendChild(el("option", null, "all")).value = "";
      filters[name].forEach(function (kv) {
        var option = el("option", null, short(show(kv[1]), 60));
        option.value = kv[0];
        select.appendChild(option);
      });
      if (chosen[name]) { select.value = chosen[name]; }
      select.addEventListener("change", applyFilters);
      label.appendChild(select);
      selects.appendChild(label);
    });
    document.getElementById("reset").hidden = Object.keys(filters).length === 0;
    var constants = document.getElementById("constants");
    clear(constants);
    if (items.length) {
      var same = Object.keys(items[0].params).filter(function (n) { return !filters[n]; });
      if (same.length) { constants.appendChild(document.createTextNode("Same for every image: ")); }
      same.forEach(function (n) {
        var span = el("span");
        span.appendChild(el("b", null, n));
        span.appendChild(document.createTextNode(" " + show(items[0].params[n])));
        constants.appendChild(span);
      });
    }
    var gallery = document.getElementById("gallery");
    items.sort(function (a, b) { return (b.t || 0) - (a.t || 0); });
    var cols = Object.keys(filters).join("\u0000");
    items.forEach(function (item, i) {
      var card = cards[item.id];
      if (!card || card.getAttribute("data-cols") !== cols) {
        var fresh = makeCard(item, filters);
        if (card) { gallery.replaceChild(fresh, card); }
        card = cards[item.id] = fresh;
      }
      var here = gallery.children[i];  /* newest first; a card already in place is not moved */
      if (here !== card) { gallery.insertBefore(card, here || null); }
    });
    document.getElementById("total").textContent = String(items.length);
    applyFilters();
  }

  function makeCard(item, filters) {
    var card = el("figure", "card");
    card.setAttribute("data-job", item.id);
    card.setAttribute("data-cols", Object.keys(filters).join("\u0000"));
    var alt = short(show(item.params.prompt || item.id), 60);
    var inputs = (item.inputs || []).filter(function (i) { return i.thumb || i.url; });
    var outputs = [item].concat((item.more || []).filter(function (m) { return m.thumb || m.url; }));
    /* an edit shows what it started from: input(s) -> output(s) */
    var images = el("div", inputs.length ? "pair" : "outputs");
    inputs.forEach(function (i) { images.appendChild(picture(i, "input", "input " + i.name)); });
    if (inputs.length) { images.appendChild(el("span", "arrow", "\u2192")); }
    outputs.forEach(function (o, k) { images.appendChild(picture(o, k ? "extra" : "output", alt)); });
    card.appendChild(images);
    var cap = el("figcaption");
    cap.appendChild(el("p", "prompt", item.params.prompt === undefined ? "" : show(item.params.prompt)));
    var table = el("table", "params");
    Object.keys(filters).forEach(function (n) {
      if (n === "prompt" || !(n in item.params)) { return; }
      var tr = el("tr");
      tr.appendChild(el("th", null, n));
      tr.appendChild(el("td", null, show(item.params[n])));
      table.appendChild(tr);
    });
    var idRow = el("tr");
    idRow.appendChild(el("th", null, "id"));
    idRow.appendChild(el("td", null, item.id));
    table.appendChild(idRow);
    cap.appendChild(table);
    card.appendChild(cap);
    card.addEventListener("click", function () { openViewer(item.id); });
    return card;
  }

  function picture(file, cls, alt) {
    var img = el("img", cls);
    if (live) { img.loading = "lazy"; }
    img.src = file.thumb || file.url;
    img.alt = alt;
    return img;
  }

  function applyFilters() {
    var selects = Array.prototype.slice.call(document.querySelectorAll("#selects select"));
    var shown = 0;
    Object.keys(cards).forEach(function (id) {
      var item = state.items[id];
      var ok = selects.every(function (s) {
        return s.value === "" || key(item.params[s.getAttribute("data-param")]) === s.value;
      });
      cards[id].hidden = !ok;
      if (ok) { shown += 1; }
    });
    document.getElementById("shown").textContent = String(shown);
  }

  /* ---- one image, full size ---- */
  function openViewer(id) {
    var item = state.items[id];
    var body = document.getElementById("viewer-body");
    clear(body);
    var alt = short(show(item.params.prompt || item.id), 60);
    var inputs = (item.inputs || []).filter(function (i) { return i.url; });
    if (inputs.length) {  /* an edit: its inputs first, then what was made from them */
      body.appendChild(el("h3", null, "input" + (inputs.length > 1 ? "s" : "")));
      inputs.forEach(function (i) { body.appendChild(fullSize(i.url, "input " + i.name)); });
      body.appendChild(el("h3", null, "output" + (item.more && item.more.length ? "s" : "")));
    }
    [item].concat(item.more || []).forEach(function (o) {
      if (o.url) { body.appendChild(fullSize(o.url, alt)); }
    });
    body.appendChild(el("p", "prompt", item.params.prompt === undefined ? "" : show(item.params.prompt)));
    if (item.error) { body.appendChild(el("p", "error", item.error)); }
    var facts = { id: item.id, file: item.file,
                  inputs: nonEmpty((item.inputs || []).map(function (i) { return i.name + " (" + i.slot + ")"; })),
                  more_files: nonEmpty((item.more || []).map(function (m) { return m.file; })), seed: item.seed, request_id: item.request_id,
                  shard: item.shard, attempts: item.attempts, cost_usd: item.cost_usd };
    body.appendChild(table({ parameters: item.params, job: facts, timings: item.timings }));
    var dialog = document.getElementById("viewer");
    if (dialog.showModal) { dialog.showModal(); } else { dialog.setAttribute("open", ""); }
  }
  function nonEmpty(list) { return list.length ? list : undefined; }
  function fullSize(url, alt) {
    var link = el("a");
    link.href = url;
    var img = el("img");
    img.src = url;
    img.alt = alt;
    link.appendChild(img);
    return link;
  }
  document.getElementById("viewer-close").addEventListener("click", function () {
    document.getElementById("viewer").close();
  });

  /* a value as a readable table: nested objects nest, lists of scalars are joined */
  function table(value) {
    var t = el("table", "kv");
    Object.keys(value).forEach(function (k) {
      var v = value[k];
      if (v === null || v === undefined) { return; }
      var tr = el("tr");
      tr.appendChild(el("th", null, k));
      var td = el("td");
      if (Array.isArray(v) && v.every(function (x) { return x === null || typeof x !== "object"; })) {
        td.textContent = v.length ? v.map(show).join(", ") : "(none)";
      } else if (typeof v === "object") {
        td.appendChild(table(v));
      } else {
        td.textContent = show(v);
      }
      tr.appendChild(td);
      t.appendChild(tr);
    });
    return t;
  }

  /* ---- failures ---- */
  function renderFailures(groups) {
    var box = document.getElementById("failure-list");
    clear(box);
    if (!groups.length) { box.appendChild(el("p", null, "None.")); return; }
    groups.forEach(function (g) {
      var section = el("div", "failure-group");
      section.setAttribute("data-kind", g.kind);
      section.appendChild(el("h3", null, g.kind + " (" + g.count + ")"));
      g.retry.forEach(function (command) {
        var p = el("p", null, "retry: ");
        p.appendChild(el("code", null, command));
        section.appendChild(p);
      });
      var t = el("table", "boxed");
      var head = el("tr");
      ["job", "prompt", "error"].forEach(function (h) { head.appendChild(el("th", null, h)); });
      t.appendChild(head);
      g.jobs.forEach(function (j) {
        var tr = el("tr");
        tr.appendChild(el("td", null, j.id));
        tr.appendChild(el("td", null, j.prompt || ""));
        tr.appendChild(el("td", "error", j.error));
        t.appendChild(tr);
      });
      section.appendChild(t);
      if (g.count > g.jobs.length) {
        section.appendChild(el("p", "note", (g.count - g.jobs.length) + " more not listed"));
      }
      box.appendChild(section);
    });
  }

  function renderSummary(summary) {
    var box = document.getElementById("summary-body");
    clear(box);
    box.appendChild(summary ? table(summary) : el("p", null, "No summary.json yet."));
  }

  /* ---- the sweep: two parameters, the grid `batchgen grid` would draw ---- */
  function renderAxes() {
    var vary = varying(state.order.map(function (id) { return state.items[id]; }));
    function numeric(name) {  /* number axes first: guidance x seed before prompt x format */
      return vary[name].every(function (kv) { return typeof kv[1] === "number"; }) ? 0 : 1;
    }
    var names = Object.keys(vary).sort(function (a, b) { return numeric(a) - numeric(b); });
    ["grid-x", "grid-y"].forEach(function (id, n) {
      var select = document.getElementById(id);
      var before = select.value;
      var have = Array.prototype.map.call(select.options, function (o) { return o.value; });
      if (have.join("\u0000") === names.join("\u0000")) { return; }
      clear(select);
      names.forEach(function (name) { select.appendChild(el("option", null, name)).value = name; });
      select.value = names.indexOf(before) >= 0 ? before : (names[n] || names[0] || "");
    });
  }
  /* live: the grid is fetched again only while it is on screen (no requests for a hidden view) */
  var gridSeen = true, gridStale = false;
  if (live && window.IntersectionObserver) {
    new IntersectionObserver(function (entries) {
      gridSeen = entries.some(function (e) { return e.isIntersecting; });
      if (gridSeen && gridStale) { gridStale = false; scheduleGrid(); }
    }).observe(document.getElementById("sweep"));
  }
  function scheduleGrid() {
    if (live && !gridSeen) { gridStale = true; return; }
    if (gridTimer) { return; }
    gridTimer = setTimeout(function () { gridTimer = null; loadGrid(); }, live ? 1000 : 0);
  }
  function loadGrid() {
    renderAxes();
    var x = document.getElementById("grid-x").value, y = document.getElementById("grid-y").value;
    var note = document.getElementById("grid-note");
    if (!x || !y || x === y) {
      note.textContent = "a sweep needs two parameters that vary";
      clear(document.getElementById("grid"));
      return;
    }
    if (!live) { drawGrid((staticData.grids || {})[x + "\u0000" + y] || { error: "not in this snapshot" }); return; }
    fetch("api/grid?x=" + encodeURIComponent(x) + "&y=" + encodeURIComponent(y))
      .then(function (r) { return r.json(); }).then(drawGrid)
      .catch(function () { note.textContent = "the grid could not be loaded"; });
  }
  function drawGrid(plan) {
    var box = document.getElementById("grid"), note = document.getElementById("grid-note");
    clear(box);
    if (plan.error) { note.textContent = plan.error; return; }
    note.textContent = plan.counts.image + " images, " + plan.counts.failed + " failed, " +
      plan.counts.missing + " not generated";
    plan.panels.forEach(function (panel) {
      if (panel.fixed.length) {
        box.appendChild(el("h3", null, panel.fixed.map(function (f) { return f[0] + " " + short(f[1], 40); }).join(", ")));
      }
      var grid = el("div", "grid");
      grid.style.gridTemplateColumns = "max-content repeat(" + plan.xs.length + ", 98px)";
      grid.appendChild(el("div", "head", plan.y + " \\ " + plan.x));
      plan.xs.forEach(function (v) { grid.appendChild(el("div", "head", short(v, 24))); });
      panel.rows.forEach(function (row, r) {
        grid.appendChild(el("div", "head", short(plan.ys[r], 30)));
        row.forEach(function (cell) { grid.appendChild(gridCell(cell)); });
      });
      box.appendChild(grid);
    });
  }
  function gridCell(cell) {
    var div;
    if (cell.status === "image") {
      div = el("div", "cell image");
      var item = cell.id ? state.items[cell.id] : state.inputs[cell.file];  /* no id: an input */
      if (item) { div.style.backgroundImage = cssUrl(item.thumb || item.url); }
      div.title = cell.id ? cell.id + (cell.more ? " (+" + cell.more + " more)" : "") : "input";
      div.addEventListener("click", function () { if (state.items[cell.id]) { openViewer(cell.id); } });
    } else if (cell.status === "failed") {
      div = el("div", "cell failed", "failed: " + (cell.error || ""));
      div.title = cell.error || "";
    } else {
      div = el("div", "cell missing", "\u00d7 not generated");
    }
    return div;
  }
  document.getElementById("grid-x").addEventListener("change", loadGrid);
  document.getElementById("grid-y").addEventListener("change", loadGrid);
  document.getElementById("reset").addEventListener("click", function () {
    Array.prototype.forEach.call(document.querySelectorAll("#selects select"), function (s) { s.value = ""; });
    applyFilters();
  });

  /* ---- start: the snapshot, or the stream ---- */
  var badge = document.getElementById("live");
  if (!live) {
    badge.textContent = "snapshot";
    setFigures(staticData);
    addItems(staticData.items);
    return;
  }
  var source = new EventSource("events");
  source.addEventListener("state", function (e) {
    var data = JSON.parse(e.data);
    state.items = {}; state.order = []; state.inputs = {}; cards = {};
    clear(document.getElementById("gallery"));
    setFigures(data);
    addItems(data.items);
    badge.textContent = "live"; badge.className = "live on";
  });
  source.addEventListener("update", function (e) {
    var data = JSON.parse(e.data);
    setFigures(data);
    addItems(data.items);
  });
  source.onerror = function () { badge.textContent = "reconnecting\u2026"; badge.className = "live off"; };
})();
