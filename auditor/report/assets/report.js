/* auditor report: everything inline, nothing from the network.
 * Data: the JSON in <script id="report-data"> (auditor.report.data.report_data), one entry per run,
 * each action being the same export `audit show` prints (auditor.report.data.action_export).
 * Select an action by clicking it, with the keyboard (↑/↓, j/k, Home/End) or with #action=ID. */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var KINDS = ["system", "user_request", "user_constraint", "tool_output", "file_context", "tool_definition", "reasoning", "prior_turn", "action", "template"];
  var KIND_LABEL = {system: "system", user_request: "user request", user_constraint: "user constraint",
    tool_output: "tool output", file_context: "file", tool_definition: "tool definition", reasoning: "reasoning",
    prior_turn: "earlier turn", action: "action", template: "template"};
  var KIND_COLOR = {system: "#6b5ca5", user_request: "#2b8a3e", user_constraint: "#74b816", tool_output: "#e8590c",
    file_context: "#a6652a", tool_definition: "#c2255c", reasoning: "#1c7ed6", prior_turn: "#74c0fc", action: "#495057",
    template: "#ced4da"};
  var OTHER_COLOR = "#ced4da";
  var OPEN_ALL_LIMIT = 3000;   // tokens: below this every heatmap segment starts open
  var DRIVER_ROWS = 12;

  var state = {run: null, runIndex: -1, actionId: null, allOpen: false};
  var byAction = {};           // action id -> {run index, export}
  var heatCache = {};          // action id -> built heatmap element (built once per action)

  // One action as the page reads it: the shared export (what `audit show` prints) + the view data.
  function flat(e) {
    var x = e.export || {}, v = e.view || {}, o = x.output || {};
    return {id: e.id, action: x.action, drivers: x.drivers || [], hops: x.hops || [], run: x.run || {},
      authority_share: x.authority_share, data_share: x.data_share, support: x.support, argument: x.argument,
      action_support: x.action_support, probability: x.probability, probability_threshold: x.probability_threshold,
      evidence: x.evidence || [], provenance: x.provenance || [],
      arguments: x.arguments || [], context_end: x.context_end || 0, output_start: o.start || 0, output_end: o.end || 0, seconds: x.seconds,
      by_kind: v.by_kind || {}, flow: v.flow, top_tokens: v.top_tokens || [], token_scores: v.token_scores || [],
      verdict: e.verdict, export: x};
  }
  DATA.runs.forEach(function (run, ri) {
    run._acts = run.actions.map(flat);
    run._acts.forEach(function (exp) { byAction[exp.action.id] = {ri: ri, exp: exp}; });
    run._segById = {};
    run.segments.forEach(function (s) { run._segById[s.id] = s; });
  });

  // ---------- helpers ----------
  var ESC = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"};
  function esc(s) { return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) { return ESC[c]; }); }
  function $(id) { return document.getElementById(id); }
  function el(tag, cls, html) { var e = document.createElement(tag); if (cls) e.className = cls; if (html != null) e.innerHTML = html; return e; }
  function pct(x, d) { if (x == null || isNaN(x)) return "–"; return (x * 100).toFixed(d == null ? 1 : d) + "%"; }
  function kcolor(k) { return KIND_COLOR[k] || OTHER_COLOR; }
  function klabel(k) { return KIND_LABEL[k] || k; }
  function chip(k) { return '<span class="chip" style="background:' + kcolor(k) + '">' + esc(klabel(k)) + "</span>"; }
  function json(v) { try { return JSON.stringify(v, null, 2); } catch (e) { return String(v); } }
  function verdictOf(exp) { return exp.verdict && exp.verdict.status ? exp.verdict.status : "none"; }
  // token strings as tokenizers spell them (byte-level BPE "Ġ"/"Ċ", sentencepiece "▁") → text
  function tokText(t) { return t.replace(/Ġ/g, " ").replace(/Ċ/g, "\n").replace(/ĉ/g, "\t").replace(/▁/g, " "); }
  function heat(a) {  // a in [0, 1] → background colour
    if (a <= 0.004) return "";
    return "rgba(214,40,40," + Math.min(1, 0.08 + 0.82 * Math.sqrt(a)).toFixed(3) + ")";
  }
  function soft(a) { return a <= 0.004 ? "" : "rgba(214,40,40," + Math.min(0.6, 0.06 + 0.54 * Math.sqrt(a)).toFixed(3) + ")"; }
  function cool(a) { return a <= 0.004 ? "" : "rgba(28,100,209," + Math.min(0.8, 0.08 + 0.7 * Math.sqrt(a)).toFixed(3) + ")"; }

  // ---------- run: header, actions list, conversation ----------
  function renderRunPicker() {
    var box = $("run-picker");
    if (DATA.runs.length < 2) { box.innerHTML = ""; return; }
    var sel = el("select"); sel.id = "run-select"; sel.setAttribute("aria-label", "Run");
    DATA.runs.forEach(function (r, i) {
      var o = el("option", null, esc(r.trajectory.id + " · " + r.run.run_id)); o.value = String(i); sel.appendChild(o);
    });
    sel.addEventListener("change", function () { showRun(+sel.value, true); });
    box.innerHTML = ""; box.appendChild(sel);
  }

  function showRun(ri, selectFirst) {
    if (ri === state.runIndex) return;
    state.runIndex = ri; state.run = DATA.runs[ri];
    var run = state.run, info = run.run;
    var sel = $("run-select"); if (sel) sel.value = String(ri);
    $("run-info").textContent = run.trajectory.id + " · run " + info.run_id + " · " + info.model + " · " + info.method +
      " (" + info.hops + " hop" + (info.hops === 1 ? "" : "s") + ") · " + (info.created_at || "").replace("T", " ").slice(0, 19);
    document.title = run.trajectory.id + " — auditor report";
    renderActions(run); renderConversation(run);
    var notes = [];
    if (run.dropped && run.dropped.length) notes.push("Dropped by the context limit: " + run.dropped.map(esc).join("; "));
    if (run.unplaced && run.unplaced.length) notes.push("Not located in the tokens: " + run.unplaced.map(esc).join("; "));
    if (!run._acts.length) notes.push("This run has no actions to explain.");
    $("run-notes").innerHTML = notes.map(function (n) { return "<p>" + n + "</p>"; }).join("");
    if (selectFirst && run._acts.length) select(run._acts[0].action.id, true);
  }

  function renderActions(run) {
    var ol = $("actions"), html = [];
    run._acts.forEach(function (exp) {
      var a = exp.action, v = verdictOf(exp), top = exp.drivers[0];
      var name = a.kind === "tool_call" ? a.tool_name : a.kind === "code_edit" ? "edit " + (a.edit ? a.edit.path : "") : "final answer";
      html.push('<li role="option" id="act-' + esc(a.id) + '" data-action-id="' + esc(a.id) + '" aria-selected="false">' +
        '<div class="a-head"><span class="a-step">#' + a.step + '</span><span class="a-name">' + esc(name) + "</span>" +
        '<span class="dot ' + esc(v) + '" title="check: ' + esc(v) + '"></span></div>' +
        '<div class="a-sub">' + (top ? esc(klabel(top.kind)) + " " + pct(top.share, 0) + " · " + esc(top.label) : "no drivers") + "</div></li>");
    });
    ol.innerHTML = html.join("");
  }

  // Split a message field's text by the segments that cover it; each piece is a .seg span.
  function segmented(run, mi, field, text, callId) {
    var segs = run.segments.filter(function (s) {
      return s.message_index === mi && s.field === field && (callId == null || s.tool_call_id === callId);
    }).sort(function (a, b) { return a.char_start - b.char_start; });
    if (field === "tool_call") {   // arguments are shown pretty-printed: tint the whole block
      return {html: esc(text), ids: segs.map(function (s) { return s.id; })};
    }
    var out = [], pos = 0;
    segs.forEach(function (s) {
      if (s.char_start < pos || s.char_end > text.length) return;
      if (s.char_start > pos) out.push(esc(text.slice(pos, s.char_start)));
      out.push('<span class="seg" data-seg="' + esc(s.id) + '" title="' + esc(klabel(s.kind) + ": " + s.label) + '">' +
        esc(text.slice(s.char_start, s.char_end)) + "</span>");
      pos = s.char_end;
    });
    out.push(esc(text.slice(pos)));
    return {html: out.join(""), ids: []};
  }

  function renderConversation(run) {
    var box = $("conversation"), html = [];
    var actionByCall = {}, finalByMsg = {};
    run._acts.forEach(function (exp) {
      var a = exp.action;
      if (a.tool_call_id) actionByCall[a.tool_call_id] = a.id;
      else (finalByMsg[a.message_index] = finalByMsg[a.message_index] || []).push(a);
    });
    if (!run.trajectory.content_captured) html.push('<p class="notes">Message content was not captured for this run.</p>');
    // the tools offered to the model: one segment per definition (a description can drive an action)
    var defs = run.trajectory.tool_definitions || [];
    if (defs.length) {
      var items = defs.map(function (t) {
        var s = run.segments.filter(function (x) { return x.field === "tool_definition" && x.tool_name === t.name; })[0];
        var body = esc(t.text);
        if (s) body = '<span class="seg" data-seg="' + esc(s.id) + '" title="' + esc(klabel(s.kind) + ": " + s.label) + '">' + body + "</span>";
        return '<div class="tooldef"><span class="c-name">' + esc(t.name) + "</span>" + (s ? "" : ' <span class="c-id">not located in the tokens</span>') +
          '<div class="text">' + body + "</div></div>";
      });
      html.push('<article class="msg role-tools" id="msg-tools" data-msg="tools"><div class="m-head"><span class="m-role">tools</span>' +
        "<span>" + defs.length + " offered</span>" + '<span class="m-heat" data-msg-heat="tools"></span></div>' + items.join("") + "</article>");
    }
    run.trajectory.messages.forEach(function (m) {
      var head = '<span class="m-role">' + esc(m.role) + "</span>";
      if (m.role === "tool") head += "<span>" + esc(m.name || "tool") + " ← " + esc(m.tool_call_id) + "</span>";
      head += "<span>#" + m.index + '</span><span class="m-heat" data-msg-heat="' + m.index + '"></span>';
      var body = "";
      if (m.reasoning) {
        body += '<details class="reasoning" open><summary>reasoning</summary><div class="text">' +
          segmented(run, m.index, "reasoning", m.reasoning).html + "</div></details>";
      }
      if (m.content) {
        var finals = finalByMsg[m.index] || [];
        var cls = "text" + (finals.length ? " final" : "");
        var attrs = finals.length ? ' data-action-id="' + esc(finals[0].id) + '"' : "";
        body += '<div class="' + cls + '"' + attrs + ">" + segmented(run, m.index, "content", m.content).html + "</div>";
      }
      m.tool_calls.forEach(function (c) {
        var aid = actionByCall[c.id];
        var seg = segmented(run, m.index, "tool_call", json(c.arguments), c.id);
        body += '<div class="call' + (aid ? " is-action" : "") + '"' + (aid ? ' data-action-id="' + esc(aid) + '"' : "") +
          (seg.ids.length ? ' data-seg-block="' + esc(seg.ids.join(" ")) + '"' : "") + ">" +
          '<span class="c-name">' + esc(c.name) + '</span><span class="c-id">' + esc(c.id) + "</span>" +
          (aid ? ' <span class="chip act">explain</span>' : "") + "<pre>" + seg.html + "</pre></div>";
      });
      html.push('<article class="msg role-' + esc(m.role) + '" id="msg-' + m.index + '" data-msg="' + m.index + '">' +
        '<div class="m-head">' + head + "</div>" + body + "</article>");
    });
    box.innerHTML = html.join("");
  }

  // ---------- selection ----------
  function select(actionId, fromUser) {
    var hit = byAction[actionId];
    if (!hit) return false;
    if (hit.ri !== state.runIndex) showRun(hit.ri, false);
    state.actionId = actionId;
    var exp = hit.exp, run = state.run;
    var items = $("actions").children;
    for (var i = 0; i < items.length; i++) {
      var on = items[i].getAttribute("data-action-id") === actionId;
      items[i].setAttribute("aria-selected", on ? "true" : "false");
      if (on) { $("actions").setAttribute("aria-activedescendant", items[i].id); if (fromUser) items[i].scrollIntoView({block: "nearest"}); }
    }
    tintConversation(run, exp, fromUser);
    renderDetail(run, exp);
    document.body.setAttribute("data-selected-action", actionId);
    var h = "#action=" + encodeURIComponent(actionId);
    if (location.hash !== h) {
      try { history.replaceState(null, "", h); } catch (e) { /* file:// in some browsers */ }
    }
    return true;
  }

  function tintConversation(run, exp, scroll) {
    var share = {}, max = 0;
    exp.drivers.forEach(function (d) { share[d.segment_id] = d.share; if (d.share > max) max = d.share; });
    var msgHeat = {};
    exp.drivers.forEach(function (d) {
      var key = d.message_index != null ? d.message_index : d.kind === "tool_definition" ? "tools" : null;
      if (key != null) msgHeat[key] = (msgHeat[key] || 0) + d.share;
    });
    var box = $("conversation");
    var segs = box.querySelectorAll(".seg");
    for (var i = 0; i < segs.length; i++) {
      var id = segs[i].getAttribute("data-seg"), s = run._segById[id];
      segs[i].style.backgroundColor = share[id] ? soft(max ? share[id] / max : 0) : "";
      segs[i].classList.toggle("target", !!(s && s.action_id === exp.action.id));
    }
    var blocks = box.querySelectorAll("[data-seg-block]");
    for (i = 0; i < blocks.length; i++) {
      var tot = 0;
      blocks[i].getAttribute("data-seg-block").split(" ").forEach(function (sid) { tot += share[sid] || 0; });
      blocks[i].style.backgroundColor = tot ? soft(max ? Math.min(1, tot / max) : 0) : "";
    }
    var heads = box.querySelectorAll("[data-msg-heat]");
    for (i = 0; i < heads.length; i++) {
      var v = msgHeat[heads[i].getAttribute("data-msg-heat")];
      heads[i].textContent = v ? "drives " + pct(v) : "";
    }
    var sel = box.querySelectorAll(".selected");
    for (i = 0; i < sel.length; i++) sel[i].classList.remove("selected");
    var mine = box.querySelector('[data-action-id="' + cssEsc(exp.action.id) + '"]') || box.querySelector(".seg.target");
    if (mine) { mine.classList.add("selected"); if (scroll) mine.scrollIntoView({block: "nearest"}); }
  }
  function cssEsc(s) { return window.CSS && CSS.escape ? CSS.escape(s) : s.replace(/["\\]/g, "\\$&"); }

  // ---------- detail ----------
  function renderDetail(run, exp) {
    var a = exp.action, v = exp.verdict, status = verdictOf(exp);
    var d = $("detail");
    var title = a.kind === "tool_call" ? a.tool_name : a.kind === "code_edit" ? "edit " + (a.edit ? a.edit.path : "") : "final answer";
    var vt = {supported: "supported", unsupported: "unsupported", ignored: "ignored by policy", unknown: "no verdict", none: "not checked"}[status] || status;
    var html = '<div class="d-title"><h1 id="action-title">' + esc(title) + '</h1><span id="verdict" class="badge ' + esc(status) +
      '" data-status="' + esc(status) + '">' + esc(vt) + "</span></div>" +
      '<p class="d-sub">' + esc(a.id) + " · step " + a.step + " · " + esc(a.kind.replace("_", " ")) + " · message #" + a.message_index +
      (exp.seconds ? " · " + exp.seconds.toFixed(2) + " s" : "") + "</p>";
    html += verdictWhy(v, exp);
    if (a.kind === "code_edit" && a.edit) html += '<pre class="args" id="edit">' + editDiff(a.edit) + "</pre>";
    else if (a.kind === "tool_call") html += '<pre class="args">' + esc(json(a.arguments)) + "</pre>";
    html += groupBar(exp);
    html += '<h3>Drivers <span class="d-sub">ranked input segments, share of the input mass</span></h3><div id="drivers-panel">' + driversTable(exp, DRIVER_ROWS) + "</div>";
    html += argumentsSection(exp);
    html += '<h3>Flow <span class="d-sub">where the action\'s attribution mass went: output → reasoning → input</span></h3><div id="flow-panel">' + flowSvg(exp) + hopBars(exp) + "</div>";
    html += '<h3>Token heatmap <span class="d-sub">context of this action, ' + exp.context_end + " tokens</span></h3>" +
      '<div class="heat-tools"><button type="button" id="toggle-all">' + (state.allOpen ? "collapse quiet segments" : "expand all") +
      '</button><span>low</span><span class="scale"></span><span>high</span><span>· outlined: the action itself</span></div>' +
      topTokens(exp) + '<div id="heatmap-slot"></div>';
    d.innerHTML = html;
    $("heatmap-slot").appendChild(heatmap(run, exp));
    var more = $("drivers-more");
    if (more) more.addEventListener("click", function () { $("drivers-panel").innerHTML = driversTable(exp, 1e9); });
    $("toggle-all").addEventListener("click", function () {
      state.allOpen = !state.allOpen; heatCache = {}; renderDetail(run, exp);
    });
  }

  function editDiff(e) {
    function lines(t, sign, cls) {
      if (!t) return "";
      return t.replace(/\n$/, "").split("\n").map(function (l) { return '<span class="' + cls + '">' + sign + " " + esc(l) + "</span>"; }).join("\n") + "\n";
    }
    return esc(e.path) + (e.format ? " (" + esc(e.format) + ")" : "") + "\n" + lines(e.search, "-", "del") + lines(e.replace, "+", "add");
  }

  function verdictWhy(v, exp) {
    if (!v) return "";
    var parts = [];
    // the calibrated verdict: the judged number (probability that the user did not ask for it)
    if (v.probability != null) parts.push("p(unsupported) " + v.probability.toFixed(2) +
      (v.probability_threshold != null ? " (flags at " + v.probability_threshold.toFixed(2) + ")" : "") +
      (v.verdict_model ? ", " + v.verdict_model + " verdict" : ""));
    if (v.support != null) parts.push("support " + pct(v.support) + (v.threshold != null ? " (needs " + pct(v.threshold, 0) + ")" : "") +
      (v.argument ? " of argument " + v.argument : ""));
    if (v.authority_share != null) parts.push("authority " + pct(v.authority_share));
    if (v.data_share != null) parts.push("data " + pct(v.data_share));
    if (v.reasoning_flow) parts.push(pct(v.reasoning_flow, 0) + " through reasoning");
    if (v.no_evidence) parts.push("no evidence either way");
    var rules = (v.rules || []).map(function (r) {
      return '<span class="rule" title="' + esc((v.rule_text || {})[r] || r) + '">' + esc(r) + "</span>";
    }).join(" ");
    var msgs = v.messages || (v.reasons ? [].concat(v.reasons) : v.message ? [v.message] : []);
    if (v.evidence && v.evidence.length) msgs = v.evidence.map(function (e) { return "evidence: " + e; }).concat(msgs);
    if (!parts.length && !rules && !msgs.length) return "";
    return '<div class="verdict-why ' + esc(v.status) + '" id="verdict-why">' + rules + " " + esc(parts.join(" · ")) +
      (msgs.length ? "<details><summary>why</summary><ul>" + msgs.map(function (r) {
        return "<li>" + esc(typeof r === "string" ? r : json(r)) + "</li>"; }).join("") + "</ul></details>" : "") + "</div>";
  }

  function groupBar(exp) {
    var kinds = Object.keys(exp.by_kind || {});
    if (!kinds.length) return "";
    var bar = kinds.map(function (k) {
      return '<span style="width:' + (exp.by_kind[k] * 100).toFixed(2) + "%;background:" + kcolor(k) + '" title="' + esc(klabel(k)) + " " + pct(exp.by_kind[k]) + '"></span>';
    }).join("");
    var leg = kinds.map(function (k) { return '<span><i style="background:' + kcolor(k) + '"></i>' + esc(klabel(k)) + " " + pct(exp.by_kind[k]) + "</span>"; }).join("");
    return '<div class="groupbar" id="kind-bar">' + bar + '</div><div class="legend">' + leg +
      // the judged support (as `audit check` judges: the decisive argument, else the whole call) and its shares
      '<span id="judged-support">' + (exp.probability != null ? "· p(unsupported) " + exp.probability.toFixed(2) + " " : "") +
      (exp.support != null ? "· support " + pct(exp.support) : "") +
      (exp.argument ? " judged on " + esc(exp.argument) : "") +
      " (authority " + pct(exp.authority_share) + " · data " + pct(exp.data_share) + ")" +
      (exp.argument && exp.action_support != null ? " · whole call " + pct(exp.action_support) : "") + "</span></div>";
  }

  function driversTable(exp, limit) {
    if (!exp.drivers.length) return '<p class="empty">No input segment received attribution mass.</p>';
    var max = exp.drivers[0].share || 1, rows = [];
    exp.drivers.slice(0, limit).forEach(function (d) {
      rows.push('<tr data-segment-id="' + esc(d.segment_id) + '" data-rank="' + d.rank + '" data-share="' + d.share + '" data-kind="' + esc(d.kind) + '">' +
        '<td class="rank">' + d.rank + "</td><td>" + chip(d.kind) + '</td><td class="label" title="' + esc(d.label) + '">' + esc(d.label) + "</td>" +
        '<td class="bar"><div class="sharebar"><span style="width:' + Math.max(1, 100 * d.share / max).toFixed(1) + "%;background:" + kcolor(d.kind) + '"></span></div></td>' +
        '<td class="num share">' + pct(d.share) + "</td></tr>");
    });
    var more = exp.drivers.length > limit ? '<button type="button" class="more" id="drivers-more">show all ' + exp.drivers.length + " drivers</button>" : "";
    return '<table class="drivers" id="drivers"><thead><tr><th>#</th><th>kind</th><th>segment</th><th>share</th><th></th></tr></thead><tbody>' +
      rows.join("") + "</tbody></table>" + more;
  }

  // Each argument of a call (an edit's path/search/replace) explained on its own: its support, ◆ when
  // the check judges the call by it, its top 2 drivers. A click on a row (or on one of its drivers)
  // shows that driver's segment in the conversation, as a click on a driver row does.
  function delta(causal, variant) {
    var c = (causal || []).filter(function (c) { return c.variant === variant && c.driver_of == null; })[0];
    return c ? (c.delta >= 0 ? "+" : "") + c.delta.toFixed(1) : "–";
  }

  function argumentsSection(exp) {
    var args = exp.arguments;
    if (!args.length) return "";
    var v = exp.verdict || {}, threshold = v.threshold, rows = [];
    args.forEach(function (g) {
      var top = g.drivers || [], first = top[0];
      var value = typeof g.value === "string" ? g.value : json(g.value);
      var flat = String(value == null ? "" : value).replace(/\s+/g, " ");
      var low = g.decisive && g.support != null && threshold != null && g.support < threshold;   // what the check flags
      var drivers = top.slice(0, 2).map(function (d) {
        return '<span class="arg-driver" data-segment-id="' + esc(d.segment_id) + '" title="' + esc(klabel(d.kind) + ": " + d.label) + '">' +
          chip(d.kind) + " " + esc(d.label) + ' <span class="num">' + pct(d.share) + "</span></span>";
      }).join("");
      rows.push('<tr class="arg" data-argument="' + esc(g.name) + '"' + (first ? ' data-segment-id="' + esc(first.segment_id) + '"' : "") +
        ' data-support="' + (g.support == null ? "" : g.support) + '" data-decisive="' + (g.decisive ? "1" : "0") + '">' +
        '<td class="arg-name">' + esc(g.name) + (g.decisive ? ' <span class="decisive" title="decisive: the check judges the call by this argument">◆</span>' : "") + "</td>" +
        '<td class="arg-value" title="' + esc(value) + '">' + esc(flat.length > 60 ? flat.slice(0, 59) + "…" : flat) + "</td>" +
        '<td class="num support' + (low ? " low" : "") + '"' + (low ? ' title="below the threshold ' + pct(threshold, 0) + '"' : "") + ">" +
        (g.support == null ? "–" : pct(g.support)) + "</td>" +
        '<td class="num delta">' + delta(g.causal, "neutral_request") + "</td>" +
        '<td class="num delta">' + delta(g.causal, "drop_top_data") + "</td>" +
        '<td class="arg-drivers">' + (drivers || '<span class="d-sub">no drivers</span>') + "</td></tr>");
    });
    var prov = (exp.provenance || []).map(function (l) { return "<li>" + esc(l) + "</li>"; }).join("");
    return '<h3>Arguments <span class="d-sub">each explained on its own: support, ◆ decisive (the check judges the call by these), top drivers</span></h3>' +
      '<div id="arguments-panel"><table class="drivers argtable" id="arguments"><thead><tr><th>argument</th><th>value</th><th>support</th>' +
      '<th title="nats the value lost when the user\'s request was neutralised">Δ request</th><th title="nats the value lost when its top data driver was removed">Δ driver</th>' +
      "<th>top drivers</th></tr></thead><tbody>" + rows.join("") + "</tbody></table>" +
      (prov ? '<h4>Where the values occur</h4><ul class="provenance" id="provenance">' + prov + "</ul>" : "") + "</div>";
  }

  // Two-step flow as in the paper's figures: the action's mass goes straight to the input, into the
  // model's own reasoning (carried on by later hops), or stays on tokens that are neither (template,
  // the action itself). Heights are shares of the action's total mass.
  function flowSvg(exp) {
    var f = exp.flow;
    if (!exp.hops.length || !f || !f.steps.length) {
      return '<p class="empty" id="flow-none">No per-hop flow for method "' + esc(exp.run.method) + '": its scores come from one pass.</p>';
    }
    var W = 540, H = 150, top = 26, gap = 10, nw = 14, x0 = 40, x1 = 200, x2 = 360;
    var st = f.steps, direct = st[0].to_input, toR = st[0].to_reasoning, other0 = st[0].to_other;
    var via = f.via_reasoning || 0, left = f.unresolved || 0, otherR = Math.max(0, (f.to_other || 0) - other0);
    function s(m) { return m > 0 ? Math.max(1.5, m * H) : 0; }
    var svg = ['<svg class="flow" id="flow" viewBox="0 0 ' + W + " " + (H + top + 2 * gap + 34) + '" role="img" aria-label="attribution flow">'];
    function band(xa, ya, xb, yb, h, color, title) {
      if (h <= 0) return;
      var mx = (xa + xb) / 2;
      svg.push('<path class="band" fill="' + color + '" d="M' + xa + "," + ya + " C" + mx + "," + ya + " " + mx + "," + yb + " " + xb + "," + yb +
        " L" + xb + "," + (yb + h) + " C" + mx + "," + (yb + h) + " " + mx + "," + (ya + h) + " " + xa + "," + (ya + h) + ' Z"><title>' + esc(title) + "</title></path>");
    }
    function rect(x, y, h, color, title) {
      if (h > 0) svg.push('<rect x="' + x + '" y="' + y.toFixed(1) + '" width="' + nw + '" height="' + h.toFixed(1) + '" fill="' + color + '"><title>' + esc(title) + "</title></rect>");
    }
    function text(x, y, t, cls, anchor) {
      svg.push('<text x="' + x + '" y="' + y.toFixed(1) + '"' + (cls ? ' class="' + cls + '"' : "") + (anchor ? ' text-anchor="' + anchor + '"' : "") + ">" + esc(t) + "</text>");
    }
    // output column: [direct | to reasoning | elsewhere]
    var oDirect = top, oR = oDirect + s(direct), oOther = oR + s(toR);
    rect(x0 - nw, top, oOther + s(other0) - top, "#495057", "the action's mass (100%)");
    text(x0 - nw, top - 9, "output");
    // right column: input (stacked by driver kind), then elsewhere
    var inH = s(direct) + s(via), iTop = top, eTop = iTop + inH + gap;
    var y = iTop, kinds = Object.keys(exp.by_kind || {});
    kinds.forEach(function (k) { var h = inH * exp.by_kind[k]; rect(x2, y, h, kcolor(k), klabel(k) + " " + pct(exp.by_kind[k])); y += h; });
    if (!kinds.length) rect(x2, iTop, inH, OTHER_COLOR, "input");
    rect(x2, eTop, s(other0) + s(otherR), "#adb5bd", "template tokens and the action's own tokens: not propagated");
    text(x2 + nw + 6, iTop + 11, "input " + pct(f.to_input));
    if (exp.support != null) text(x2 + nw + 6, iTop + 25, "support " + pct(exp.support), "muted");
    text(x2 + nw + 6, eTop + 11, "elsewhere " + pct(f.to_other), "muted");
    text(x2 + nw + 6, eTop + 25, "template, own tokens", "muted");
    // reasoning column
    var rH = s(toR), rTop = top + s(direct) + gap;
    if (rH > 0) {
      rect(x1, rTop, rH, kcolor("reasoning"), "reasoning (model-generated tokens): " + pct(toR));
      rect(x1, rTop + rH - s(left), s(left), "#adb5bd", "unresolved after the last hop: " + pct(left));
      text(x1 + nw / 2, rTop + rH + 13, "reasoning " + pct(toR) + (left > 0.0005 ? " · " + pct(left) + " unresolved" : ""), "muted", "middle");
    }
    // bands
    band(x0, oDirect, x2, iTop, s(direct), "#868e96", "hop 0: output → input " + pct(direct));
    band(x0, oR, x1, rTop, rH, kcolor("reasoning"), "hop 0: output → reasoning " + pct(toR));
    band(x0, oOther, x2, eTop, s(other0), "#adb5bd", "hop 0: output → template / own tokens " + pct(other0));
    band(x1 + nw, rTop, x2, iTop + s(direct), s(via), kcolor("reasoning"), "hops ≥ 1: reasoning → input " + pct(via));
    band(x1 + nw, rTop + s(via), x2, eTop + s(other0), s(otherR), "#adb5bd", "hops ≥ 1: reasoning → template " + pct(otherR));
    if (s(direct) >= 12) text((x0 + x2) / 2, oDirect + Math.min(s(direct) / 2 + 4, 40), "direct " + pct(direct), null, "middle");
    if (via > 0.0005) text((x1 + x2) / 2 + 10, rTop - 3, "via reasoning " + pct(via), "muted", "middle");
    text(0, H + top + 2 * gap + 28, "ρ (share on generated tokens) per hop: " + exp.hops.map(function (h) { return "hop " + h.hop + " " + pct(h.flow_ratio); }).join(" · "), "muted");
    svg.push("</svg>");
    return svg.join("");
  }

  // Mass per segment kind at each hop (the paper's Figure 7), one stacked bar per hop.
  function hopBars(exp) {
    if (!exp.hops.length) return "";
    var seen = {};
    var rows = exp.hops.map(function (h) {
      var keys = Object.keys(h.by_kind || {}).sort(function (a, b) {
        var ia = KINDS.indexOf(a), ib = KINDS.indexOf(b); return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
      });
      var tot = 0; keys.forEach(function (k) { tot += h.by_kind[k]; });
      var bar = keys.map(function (k) {
        seen[k] = 1;
        return '<span style="width:' + (100 * h.by_kind[k] / (tot || 1)).toFixed(2) + "%;background:" + kcolor(k) + '" title="hop ' + h.hop + ": " + esc(klabel(k)) + " " + pct(h.by_kind[k]) + '"></span>';
      }).join("");
      return '<div class="hoprow" data-hop="' + h.hop + '"><div class="legend"><span>hop ' + h.hop + " · ρ " + pct(h.flow_ratio) +
        " on generated tokens</span></div><div class=\"groupbar\">" + bar + "</div></div>";
    });
    var leg = Object.keys(seen).map(function (k) { return '<span><i style="background:' + kcolor(k) + '"></i>' + esc(klabel(k)) + "</span>"; }).join("");
    return '<div id="hop-bars">' + rows.join("") + '<div class="legend">' + leg + "</div></div>";
  }

  function topTokens(exp) {
    if (!exp.top_tokens || !exp.top_tokens.length) return "";
    return '<p class="toplist">top tokens: ' + exp.top_tokens.slice(0, 8).map(function (t) {
      return "<b>" + esc(tokText(t.text)).replace(/\n/g, "↵") + "</b>";
    }).join(" ") + "</p>";
  }

  // ---------- token heatmap: blocks per segment (and template gaps), tokens built lazily ----------
  function heatmap(run, exp) {
    var key = exp.action.id;
    if (heatCache[key]) return heatCache[key];
    var scores = exp.token_scores || [], n = exp.context_end || scores.length;
    var end = Math.max(n, exp.output_end || 0);
    end = Math.min(end, run.tokens.length || end);
    var max = 0, min = 0, total = 0;
    for (var i = 0; i < scores.length; i++) { var v = scores[i]; if (v > max) max = v; if (v < min) min = v; if (v > 0) total += v; }
    var share = {};
    exp.drivers.forEach(function (d) { share[d.segment_id] = d.share; });
    var rank = {};
    exp.drivers.forEach(function (d) { rank[d.segment_id] = d.rank; });
    // blocks: placed segments in token order, gaps (template tokens) between them
    var segs = run.segments.filter(function (s) { return s.token_start != null && s.token_end != null && s.token_start < end; })
      .sort(function (a, b) { return a.token_start - b.token_start; });
    var blocks = [], pos = 0;
    segs.forEach(function (s) {
      if (s.token_start < pos) return;
      if (s.token_start > pos) blocks.push({gap: true, a: pos, b: s.token_start});
      blocks.push({seg: s, a: s.token_start, b: Math.min(s.token_end, end)});
      pos = Math.min(s.token_end, end);
    });
    if (pos < end) blocks.push({gap: true, a: pos, b: end});
    var openAll = state.allOpen || end <= OPEN_ALL_LIMIT;
    var root = el("div"); root.id = "heatmap"; root.setAttribute("data-action-id", key);
    var frag = document.createDocumentFragment();
    blocks.forEach(function (b) {
      var mass = 0;
      for (var j = b.a; j < Math.min(b.b, scores.length); j++) if (scores[j] > 0) mass += scores[j];
      var m = total ? mass / total : 0;
      var s = b.seg, isOut = exp.output_start < b.b && b.a < exp.output_end;
      var open = openAll || isOut || (s && rank[s.id] && rank[s.id] <= 5) || m > 0.02;
      if (b.gap && b.b - b.a <= 12 && !openAll) open = m > 0.02;
      var div = el("div", "block" + (b.gap ? " gap" : "") + (open ? "" : " closed"));
      if (s) div.setAttribute("data-seg", s.id);
      var label = s ? chip(s.kind) + ' <span class="b-label" title="' + esc(s.label) + '">' + esc(s.label || s.id) + "</span>"
        : '<span class="b-label">template · ' + (b.b - b.a) + " tokens</span>";
      var num = s && share[s.id] != null ? pct(share[s.id]) : (m ? pct(m) : "");
      div.innerHTML = '<div class="b-head"><span class="b-tw">' + (open ? "▾" : "▸") + "</span>" + label +
        '<span class="b-heat"><span style="width:' + (100 * Math.min(1, m * 2)).toFixed(1) + '%"></span></span><span class="b-num" title="' +
        (s && share[s.id] != null ? "driver share" : "share of the context's mass") + '">' + num + "</span></div>";
      div._range = b;
      if (open) fill(div);
      frag.appendChild(div);
    });
    root.appendChild(frag);
    root.addEventListener("click", function (ev) {
      var head = ev.target.closest(".b-head");
      if (!head) return;
      var div = head.parentNode, closed = div.classList.toggle("closed");
      head.firstChild.textContent = closed ? "▸" : "▾";
      if (!closed) fill(div);
    });
    function fill(div) {   // one pass over the block's tokens, one innerHTML write
      if (div._filled) return;
      div._filled = true;
      var b = div._range, parts = new Array(b.b - b.a), toks = run.tokens;
      for (var j = b.a; j < b.b; j++) {
        var sc = j < scores.length ? scores[j] : 0, t = toks[j] == null ? "" : toks[j];
        var cls = j >= exp.output_start && j < exp.output_end ? ' class="o"' : (b.gap ? ' class="sp"' : "");
        var bg = sc > 0 ? heat(max ? sc / max : 0) : sc < 0 ? cool(min ? sc / min : 0) : "";
        parts[j - b.a] = "<span" + cls + ' data-i="' + j + '"' + (bg ? ' style="background:' + bg + '"' : "") +
          (sc ? ' title="' + sc + '"' : "") + ">" + esc(tokText(t)) + "</span>";
      }
      var body = el("div", "toks"); body.innerHTML = parts.join("");
      div.appendChild(body);
    }
    heatCache[key] = root;
    return root;
  }

  // ---------- events ----------
  $("actions").addEventListener("click", function (ev) {
    var li = ev.target.closest("li[data-action-id]");
    if (li) { select(li.getAttribute("data-action-id"), true); $("actions").focus({preventScroll: true}); }
  });
  $("conversation").addEventListener("click", function (ev) {
    var sg = ev.target.closest(".seg"), seg = sg && state.run._segById[sg.getAttribute("data-seg")];
    if (seg && seg.action_id && byAction[seg.action_id]) { select(seg.action_id, true); return; }
    var t = ev.target.closest("[data-action-id]");
    if (t && (t.classList.contains("is-action") || t.classList.contains("final"))) select(t.getAttribute("data-action-id"), true);
  });
  $("detail").addEventListener("click", function (ev) {
    var tr = ev.target.closest("[data-segment-id]");   // a driver row, an argument row or one of its drivers
    if (!tr) return;
    var id = tr.getAttribute("data-segment-id");
    var target = $("conversation").querySelector('[data-seg="' + cssEsc(id) + '"]') ||
      $("conversation").querySelector('[data-seg-block~="' + cssEsc(id) + '"]');
    if (target) { target.scrollIntoView({block: "center"}); target.classList.remove("flash"); void target.offsetWidth; target.classList.add("flash"); }
    var block = $("detail").querySelector('.block[data-seg="' + cssEsc(id) + '"]');
    if (block) {
      if (block.classList.contains("closed")) block.firstChild.click();
      block.classList.remove("flash"); void block.offsetWidth; block.classList.add("flash");
    }
  });
  function move(delta) {
    var acts = state.run ? state.run._acts : [];
    if (!acts.length) return;
    var i = acts.findIndex(function (e) { return e.action.id === state.actionId; });
    i = delta === Infinity ? acts.length - 1 : delta === -Infinity ? 0 : Math.max(0, Math.min(acts.length - 1, i + delta));
    select(acts[i].action.id, true);
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    var tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "select" || tag === "textarea") return;
    var k = ev.key;
    if (k === "ArrowDown" || k === "j") { move(1); ev.preventDefault(); }
    else if (k === "ArrowUp" || k === "k") { move(-1); ev.preventDefault(); }
    else if (k === "Home") { move(-Infinity); ev.preventDefault(); }
    else if (k === "End") { move(Infinity); ev.preventDefault(); }
    else if (k === "e" && state.actionId) { $("toggle-all").click(); }
  });
  function fromHash() {
    var id = hashAction();
    return id != null && id !== state.actionId && select(id, true);
  }
  window.addEventListener("hashchange", fromHash);

  // ---------- start ----------
  renderRunPicker();
  if (!DATA.runs.length) { $("detail").innerHTML = '<p class="empty">This report has no runs.</p>'; return; }
  function hashAction() {
    var m = /(?:^#|&)action=([^&]+)/.exec(location.hash);
    if (!m) return null;
    try { return decodeURIComponent(m[1]); } catch (e) { return m[1]; }
  }
  var first = byAction[hashAction()];
  showRun(first ? first.ri : 0, !first);
  if (first) fromHash();
  document.body.setAttribute("data-ready", "1");
  window.auditorReport = {select: select, data: DATA};
})();
