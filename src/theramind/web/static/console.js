// The TheraMind console. Every piece of patient or model text is set with textContent, never
// parsed as HTML, so a message cannot inject markup or script into the page.
"use strict";

const state = { patient: null, session: null, token: sessionStorage.getItem("theramind-token") };

if (location.hash.startsWith("#token=")) {
  state.token = decodeURIComponent(location.hash.slice(7));
  sessionStorage.setItem("theramind-token", state.token);
  history.replaceState(null, "", location.pathname);
}

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  if (state.token) h["Authorization"] = "Bearer " + state.token;
  return h;
}

async function api(path, options = {}) {
  const response = await fetch(path, {
    method: options.method || "GET",
    headers: headers(options.body !== undefined),
    body: options.body !== undefined ? JSON.stringify(options.body) : undefined,
  });
  if (response.status === 401) {
    const token = prompt("This server needs its API token:");
    if (token) {
      state.token = token;
      sessionStorage.setItem("theramind-token", token);
      return api(path, options);
    }
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.message || response.statusText);
  return data;
}

function showError(error) {
  $("server-status").textContent = "Error: " + error.message;
}

// -- tabs ---------------------------------------------------------------------------------------

for (const tab of document.querySelectorAll("nav [role=tab]")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll("nav [role=tab]")) {
      other.setAttribute("aria-selected", String(other === tab));
      $("view-" + other.dataset.view).hidden = other !== tab;
    }
    if (tab.dataset.view === "runs") loadRuns().catch(showError);
  });
}

// -- risk banner --------------------------------------------------------------------------------

function setRisk(open, resources) {
  $("risk-banner").hidden = !open;
  const list = $("risk-resources");
  list.replaceChildren(...(resources || []).map((line) => el("li", "", line.replace(/^- /, ""))));
}

// -- counseling ---------------------------------------------------------------------------------

function say(who, text, notes) {
  const item = el("li", who === "Counselor" ? "counselor" : "patient");
  item.append(el("span", "who", who));
  const body = el("span", "text", text);
  item.append(body);
  if (notes) item.append(el("span", "notes", notes));
  $("chat").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function setEnabled(open) {
  for (const id of ["message", "send", "end"]) $(id).disabled = !open;
}

function fill(record) {
  const p = record.perception || {};
  const screen = record.risk_screen || {};
  const values = {
    emotion: p.emotion,
    intensity: p.intensity !== undefined ? Number(p.intensity).toFixed(2) : "–",
    attitude: p.attitude,
    resistance: p.resistance ? "yes" : "no",
    risk: record.risk_level + (record.crisis ? " (crisis protocol)" : ""),
    risk_evidence: [p.risk_evidence, ...(screen.evidence || [])].filter(Boolean).join("; ") || "–",
    strategy: record.strategy,
    therapies: (record.therapies || []).join(" + "),
    phase: record.phase,
    fallbacks: (record.fallbacks || []).join(", ") || "none",
  };
  for (const cell of document.querySelectorAll("#supervision [data-field]")) {
    const value = values[cell.dataset.field];
    cell.textContent = value === undefined || value === null || value === "" ? "–" : String(value);
    if (cell.dataset.field === "risk") cell.className = "level-" + record.risk_level;
  }
  const recalled = (record.recalled || []).map((m) =>
    el("li", "", `[${m.kind}, session ${m.session_no}] ${m.text}`),
  );
  $("recalled").replaceChildren(...(recalled.length ? recalled : [el("li", "muted", "none")]));
}

$("start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = $("patient-id").value.trim();
  const profile = { patient_id: id, pseudonym: $("patient-name").value.trim() };
  const problem = $("patient-problem").value.trim();
  if (problem) profile.presenting_problem = problem;
  $("start").disabled = true;
  $("server-status").textContent = "Starting the session…";
  try {
    let known = true;
    try {
      await api(`/api/patients/${encodeURIComponent(id)}`);
    } catch (error) {
      known = false;
    }
    const session = await api(`/api/patients/${encodeURIComponent(id)}/sessions`, {
      method: "POST",
      body: { profile: known ? null : profile },
    });
    state.patient = id;
    state.session = session.session_no;
    $("chat").replaceChildren();
    $("outcome").hidden = true;
    $("session-info").textContent =
      `Session ${session.session_no}${session.resumed ? " (resumed)" : ""} · ` +
      `${session.therapies.join(" + ")} · phase ${session.phase}`;
    say("Counselor", session.opening);
    setRisk(session.risk_open, session.resources);
    setEnabled(true);
    $("server-status").textContent = "";
    $("message").focus();
  } catch (error) {
    showError(error);
  } finally {
    $("start").disabled = false;
  }
});

async function* sse(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) yield { name, data: JSON.parse(data.join("\n")) };
    }
  }
}

$("message-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("message").value;
  if (!text.trim() || state.session === null) return;
  $("message").value = "";
  setEnabled(false);
  say("You", text);
  const bubble = say("Counselor", "");
  const body = bubble.querySelector(".text");
  try {
    const path = `/api/patients/${encodeURIComponent(state.patient)}/sessions/${state.session}/stream`;
    const response = await fetch(path, {
      method: "POST",
      headers: headers(true),
      body: JSON.stringify({ text }),
    });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      throw new Error(data.message || response.statusText);
    }
    let closing = false;
    for await (const event of sse(response)) {
      if (event.name === "token") body.textContent += event.data;
      else if (event.name === "turn") {
        body.textContent = event.data.reply;
        fill(event.data.record);
        setRisk(event.data.risk_open, event.data.resources);
        closing = event.data.closing;
        bubble.dataset.turn = String(event.data.record.turn);
      } else if (event.name === "error") throw new Error(event.data.message);
    }
    setEnabled(true);
    if (closing) {
      $("message").disabled = true;
      $("send").disabled = true;
      $("server-status").textContent = "The counselor closed the session: end it to save the plan.";
    }
  } catch (error) {
    bubble.remove();
    showError(error);
    setEnabled(true);
  }
});

$("end").addEventListener("click", async () => {
  setEnabled(false);
  $("server-status").textContent = "Closing the session (efficacy, therapy decision, memory)…";
  try {
    const path = `/api/patients/${encodeURIComponent(state.patient)}/sessions/${state.session}/end`;
    const outcome = await api(path, { method: "POST" });
    const card = $("outcome");
    const d = outcome.decision;
    card.replaceChildren(
      el("strong", "", `Next session: ${d.action} ${d.therapies.join(" + ")} (phase ${d.phase})`),
      el("p", "", d.reason),
      el("p", "muted", `Efficacy: ${outcome.efficacy.verdict}. ${outcome.efficacy.reason}`),
    );
    card.hidden = false;
    state.session = null;
    $("server-status").textContent = "";
  } catch (error) {
    showError(error);
    setEnabled(true);
  }
});

// -- patient view -------------------------------------------------------------------------------

$("patient-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const id = $("view-patient-id").value.trim();
    const data = await api(`/api/patients/${encodeURIComponent(id)}`);
    const p = data.profile;
    $("patient-profile").replaceChildren(
      el("strong", "", `${p.pseudonym || p.patient_id} (${p.patient_id})`),
      el("p", "", p.presenting_problem || ""),
      el("p", "muted", data.open_session ? `Session ${data.open_session} is open.` : ""),
    );
    const items = data.sessions.map((s) => {
      const li = el("li");
      const d = s.decision;
      li.append(el("strong", "", `Session ${s.session_no}: ${d.action} → ${d.therapies.join(" + ")}`));
      li.append(el("span", "muted", ` (efficacy ${s.efficacy.verdict}, phase ${d.phase})`));
      li.append(el("div", "small", d.reason));
      return li;
    });
    $("timeline").replaceChildren(...(items.length ? items : [el("li", "muted", "No closed sessions yet.")]));
    const f = data.formulation;
    const box = $("formulation");
    box.replaceChildren();
    if (f) {
      box.append(el("p", "", `Severity: ${f.severity}`));
      for (const key of ["presenting_problems", "considered", "maintaining_factors", "strengths"]) {
        if (f[key] && f[key].length) box.append(el("p", "", `${key.replace(/_/g, " ")}: ${f[key].join("; ")}`));
      }
    } else box.append(el("p", "muted", "No formulation yet."));
    setRisk(data.risk_open, data.risk_open ? (await resourcesFor(id)) : []);
  } catch (error) {
    showError(error);
  }
});

async function resourcesFor() {
  return Array.from($("risk-resources").children).map((li) => li.textContent);
}

// -- run viewer ---------------------------------------------------------------------------------

async function loadRuns() {
  const data = await api("/api/runs");
  $("runs-root").textContent = data.root;
  const select = $("run-select");
  const current = select.value;
  select.replaceChildren(el("option", "", "(choose a run)"));
  select.firstChild.value = "";
  for (const run of data.runs) {
    const option = el("option", "", `${run.name} (${run.sessions} sessions, ${run.turns} turns)`);
    option.value = run.name;
    select.append(option);
  }
  select.value = current;
}

$("run-select").addEventListener("change", async () => {
  const name = $("run-select").value;
  if (!name) return;
  try {
    const index = await api(`/api/runs/${encodeURIComponent(name)}`);
    const rows = index.tracks.map((t) => {
      const tr = el("tr");
      tr.append(el("td", "", t.counselor), el("td", "", t.patient_id), el("td", "", t.seed));
      const cell = el("td");
      for (const s of t.sessions) {
        const link = el("a", s.complete ? "" : "muted", `S${s.session_no}`);
        link.href = "#";
        link.title = s.complete ? `${s.rounds} rounds, ${s.end_reason}` : "incomplete";
        link.addEventListener("click", (event) => {
          event.preventDefault();
          showTranscript(name, t, s.session_no).catch(showError);
        });
        cell.append(link);
      }
      tr.append(cell);
      return tr;
    });
    $("run-index").querySelector("tbody").replaceChildren(...rows);
    const figures = $("figures");
    figures.replaceChildren();
    for (const figure of index.figures) {
      const response = await fetch(
        `/api/runs/${encodeURIComponent(name)}/figures/${figure.split("/").map(encodeURIComponent).join("/")}`,
        { headers: headers(false) },
      );
      if (!response.ok) continue;
      const img = el("img");
      img.alt = figure;
      img.src = URL.createObjectURL(await response.blob());
      figures.append(el("h3", "", figure), img);
    }
  } catch (error) {
    showError(error);
  }
});

async function showTranscript(name, track, sessionNo) {
  const query = new URLSearchParams({
    counselor: track.counselor,
    patient_id: track.patient_id,
    session_no: String(sessionNo),
    seed: String(track.seed),
  });
  const data = await api(`/api/runs/${encodeURIComponent(name)}/transcript?${query}`);
  $("transcript-title").textContent =
    `${data.counselor} × ${data.patient_id}, session ${data.session_no}` +
    (data.complete ? ` (${data.end_reason})` : " (incomplete)");
  const items = [];
  const opening = el("li", "counselor");
  opening.append(el("span", "who", "Counselor"), el("span", "text", data.opening));
  items.push(opening);
  for (const r of data.rounds) {
    const patient = el("li", "patient");
    patient.append(el("span", "who", `Patient (${r.patient_attitude || "?"})`), el("span", "text", r.patient));
    const counselor = el("li", "counselor");
    const p = r.perception || {};
    const notes = [
      p.emotion ? `perceived ${p.emotion} ${Number(p.intensity).toFixed(2)}, ${p.attitude}` : null,
      r.strategy ? `strategy ${r.strategy}` : null,
      r.therapies.length ? `therapy ${r.therapies.join(" + ")}` : null,
      r.phase ? `phase ${r.phase}` : null,
      `risk ${r.risk_level}${r.crisis ? " (crisis)" : ""}`,
      r.fallbacks.length ? `fallbacks: ${r.fallbacks.join(", ")}` : null,
    ].filter(Boolean);
    counselor.append(el("span", "who", "Counselor"), el("span", "text", r.reply), el("span", "notes", notes.join(" · ")));
    items.push(patient, counselor);
  }
  if (data.decision) {
    items.push(el("li", "muted", `Decision: ${data.decision.action} → ${(data.decision.therapies || []).join(" + ")}. ${data.decision.reason || ""}`));
  }
  $("transcript").replaceChildren(...items);
}

api("/api/health")
  .then((h) => ($("server-status").textContent = `Records in ${h.home}`))
  .catch(showError);
