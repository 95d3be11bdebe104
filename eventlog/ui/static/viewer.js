// The eventlog viewer's only script: expand an event, the time-travel slider, live updates.
// Everything from the store is written with textContent (never innerHTML): stored text is
// hostile and stays text. No inline script anywhere (the Content-Security-Policy forbids it).
"use strict";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

function getJSON(url) {
  return fetch(url, { credentials: "same-origin" }).then((r) => {
    if (!r.ok) throw new Error(url + ": " + r.status);
    return r.json();
  });
}

function setupExpand(root, streamId) {
  root.addEventListener("click", (ev) => {
    const button = ev.target.closest("button.expand");
    if (!button) return;
    const row = button.closest("tr");
    const next = row.nextElementSibling;
    if (next && next.classList.contains("json-row")) {
      next.remove();
      return;
    }
    getJSON("/streams/" + streamId + "/events/" + button.dataset.seq).then((doc) => {
      const tr = el("tr", undefined, "json-row");
      const td = el("td");
      td.colSpan = 5;
      td.appendChild(el("pre", JSON.stringify(doc, null, 2), "json"));
      tr.appendChild(td);
      row.after(tr);
    });
  });
}

function setupSlider(runId) {
  const slider = document.getElementById("slider");
  if (!slider) return;
  const out = document.getElementById("slider-seq");
  const state = document.getElementById("state");
  const changes = document.querySelector("#changes tbody");
  const type = document.getElementById("slider-type");
  let pending = 0;
  function show() {
    const seq = slider.value;
    const ticket = ++pending;
    getJSON("/runs/" + runId + "/state?seq=" + seq).then((doc) => {
      if (ticket !== pending) return; // a later move won
      out.textContent = String(doc.seq);
      type.textContent = doc.type ? "(" + doc.type + ")" : "";
      state.textContent = JSON.stringify(doc.state, null, 2);
      changes.replaceChildren();
      for (const c of doc.changes) {
        const tr = el("tr");
        tr.appendChild(el("td", c.field));
        tr.appendChild(el("td", JSON.stringify(c.old)));
        tr.appendChild(el("td", "→"));
        tr.appendChild(el("td", JSON.stringify(c.new)));
        changes.appendChild(tr);
      }
      if (!doc.changes.length) changes.appendChild(el("tr")).appendChild(el("td", "(no other field changed)"));
      state.dataset.seq = String(doc.seq);
    });
  }
  slider.addEventListener("input", show);
  show();
}

function addRow(body, doc) {
  const tr = el("tr", undefined, "event-row live-row");
  tr.id = "seq-" + doc.seq;
  tr.dataset.seq = String(doc.seq);
  tr.appendChild(el("td", String(doc.seq)));
  tr.appendChild(el("td", doc.recorded_at.slice(11, 23)));
  tr.appendChild(el("td", ""));
  tr.appendChild(el("td", doc.type));
  const summary = el("td", undefined, "summary");
  const button = el("button", "{}", "expand");
  button.type = "button";
  button.dataset.seq = String(doc.seq);
  summary.appendChild(button);
  const payload = Object.assign({}, doc.payload);
  delete payload.type;
  delete payload.timestamp;
  let text = JSON.stringify(payload);
  if (text.length > 160) text = text.slice(0, 159) + "…";
  summary.appendChild(document.createTextNode(" " + text));
  tr.appendChild(summary);
  body.appendChild(tr);
}

const ENDS = { RunCompleted: "completed", RunFailed: "failed", RunCancelled: "cancelled" };

function setupLive(root, streamId) {
  if (root.dataset.live !== "yes" || !window.EventSource) return;
  const body = document.getElementById("timeline-body");
  const count = document.getElementById("event-count");
  const slider = document.getElementById("slider");
  const badge = document.getElementById("live-badge");
  const status = document.getElementById("run-status");
  const source = new EventSource("/events/" + streamId + "?after=" + root.dataset.lastSeq);
  source.addEventListener("open", () => { badge.hidden = false; });
  source.addEventListener("error", () => { badge.hidden = true; });
  source.addEventListener("event", (msg) => {
    const doc = JSON.parse(msg.data);
    if (document.getElementById("seq-" + doc.seq)) return;
    addRow(body, doc);
    root.dataset.lastSeq = String(doc.seq);
    count.textContent = String(doc.seq);
    if (slider) {
      const atEnd = slider.value === slider.max;
      slider.max = String(doc.seq);
      if (atEnd) { slider.value = slider.max; slider.dispatchEvent(new Event("input")); }
    }
    if (status && doc.type === "ModelStarted") status.textContent = "running";
    if (status && ENDS[doc.type]) status.textContent = ENDS[doc.type];
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("run") || document.getElementById("stream-page");
  if (!root) return;
  const streamId = root.dataset.run;
  const timeline = document.getElementById("timeline");
  if (timeline) setupExpand(timeline, streamId);
  if (document.getElementById("run")) setupSlider(streamId);
  setupLive(root, streamId);
});
