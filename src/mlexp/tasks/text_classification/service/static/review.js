// The review page: JSON fetches to /review/api/*, keyboard shortcuts, one item at a time.
"use strict";

const $ = (id) => document.getElementById(id);
let state = null; // {reviewer, labels, items, progress}
let busy = false;

async function call(method, path, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    // a File goes as its bytes: file.text() would replace what is not UTF-8, which the server names instead
    options.body = body instanceof Blob ? body : JSON.stringify(body);
  }
  const answer = await fetch(path, options);
  const payload = await answer.json().catch(() => ({ error: `HTTP ${answer.status}` }));
  if (!answer.ok) {
    const error = new Error(payload.error || `HTTP ${answer.status}`);
    error.status = answer.status;
    throw error;
  }
  return payload;
}

function showSignIn(message) {
  $("signin").hidden = false;
  $("review").hidden = true;
  $("who").hidden = true;
  $("signin-error").textContent = message || "";
  $("name").focus();
}

function current() {
  return state && state.items.length ? state.items[0] : null;
}

function render() {
  $("signin").hidden = true;
  $("review").hidden = false;
  $("who").hidden = false;
  $("reviewer").textContent = state.reviewer;
  const p = state.progress;
  $("progress").textContent = `Reviewed ${p.reviewed} · ${p.pending} pending · ${p.reviewed_by_you} by you`;
  const item = current();
  $("empty").hidden = item !== null;
  $("item").hidden = item === null;
  if (!item) return;
  $("item-id").textContent = item.id;
  $("source").textContent = item.source;
  $("text").textContent = item.text;
  $("predicted").textContent = item.predicted_class;
  $("confidence").textContent = item.score.toFixed(2);
  $("confidence-bar").style.width = `${Math.round(item.score * 100)}%`;
  $("review-error").textContent = "";
  const labels = $("labels");
  labels.replaceChildren();
  state.labels.forEach((label, index) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.label = label;
    if (label === item.predicted_class) button.className = "model";
    button.innerHTML = index < 9 ? `<kbd>${index + 1}</kbd> ` : "";
    button.append(label);
    button.addEventListener("click", () => decide(label));
    labels.append(button);
  });
}

async function refresh() {
  try {
    state = await call("GET", "/review/api/queue");
    render();
  } catch (error) {
    if (error.status === 401) showSignIn();
    else $("signin-error").textContent = error.message;
  }
}

async function act(path, body) {
  if (busy) return;
  busy = true;
  try {
    state = await call("POST", path, body);
    render();
  } catch (error) {
    if (error.status === 401) showSignIn("Your session ended: sign in again.");
    else $("review-error").textContent = error.message;
  } finally {
    busy = false;
  }
}

function decide(label) {
  const item = current();
  if (item) act("/review/api/decide", { id: item.id, label });
}

function skip() {
  const item = current();
  if (item) act("/review/api/skip", { id: item.id });
}

async function signIn() {
  try {
    await call("POST", "/review/api/login", { name: $("name").value, password: $("password").value });
    $("password").value = "";
    await refresh();
  } catch (error) {
    showSignIn(error.message);
  }
}

// what `mlexp review label-studio-import` says: how many were stored, and how many tasks were skipped and why
function importSummary(answer) {
  const stored = `Label Studio import: ${answer.imported} decision(s) stored`;
  if (!answer.skipped) return `${stored} from ${answer.tasks} task(s)`;
  const why = Object.entries(answer.skipped_by_reason).map(([reason, count]) => `${count} ${reason}`).join(", ");
  return `${stored}; skipped ${answer.skipped} of ${answer.tasks} task(s): ${why}`;
}

async function importLabelStudio() {
  const input = $("ls-import");
  const file = input.files[0];
  if (!file) return;
  const result = $("import-result");
  result.className = "";
  result.textContent = `Importing ${file.name}…`;
  try {
    const path = `/review/api/label-studio/import?file=${encodeURIComponent(file.name)}`;
    result.textContent = importSummary(await call("POST", path, file));
    await refresh(); // imported records leave the queue
  } catch (error) {
    if (error.status === 401) showSignIn("Your session ended: sign in again.");
    result.className = "error";
    // a 422 names the file already, as the CLI's line does; nothing stored is one too, never "0 stored"
    result.textContent = error.status === 422 ? error.message : `${file.name}: ${error.message}`;
  } finally {
    input.value = ""; // the same file can be chosen again
  }
}

$("signin-button").addEventListener("click", signIn);
$("ls-import").addEventListener("change", importLabelStudio);
$("password").addEventListener("keydown", (event) => { if (event.key === "Enter") signIn(); });
$("name").addEventListener("keydown", (event) => { if (event.key === "Enter") $("password").focus(); });
$("approve").addEventListener("click", () => { const item = current(); if (item) decide(item.predicted_class); });
$("skip").addEventListener("click", skip);
$("logout").addEventListener("click", async () => { await call("POST", "/review/api/logout", {}); showSignIn(); });

document.addEventListener("keydown", (event) => {
  if ($("review").hidden || event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) return;
  const item = current();
  if (!item) return;
  const key = event.key.toLowerCase();
  if (key === "a" || key === "enter") {
    event.preventDefault();
    decide(item.predicted_class);
  } else if (key === "s") {
    event.preventDefault();
    skip();
  } else if (/^[1-9]$/.test(key) && Number(key) <= state.labels.length) {
    event.preventDefault();
    decide(state.labels[Number(key) - 1]);
  }
});

refresh();
