// Chat page: streams answers from /v1/chat/completions and shows cited sentences in context.
// Document text is only ever inserted as text nodes, never as HTML.
"use strict";

const MAX_QUESTION_CHARS = 2000; // the API's limit (rag.config.MAX_QUESTION_CHARS)
const conversation = document.getElementById("conversation");
const welcome = document.getElementById("welcome");
const form = document.getElementById("ask");
const input = document.getElementById("question");
const send = document.getElementById("send");
const tooLong = document.getElementById("too-long");
const panel = document.getElementById("source");
const history = [];

if (new URLSearchParams(location.search).has("embed")) document.body.classList.add("embed");

// A service with RAG_PROTECT_READS wants its API key for reads too: the page asks for it on the
// first 401 and keeps it for this tab's session only (sessionStorage), never in the page's URL.
const KEY_ITEM = "rag-api-key";
let askingForKey = null;

function keyFromUser(refused) {
  askingForKey ||= Promise.resolve().then(() => {
    const entered = window.prompt(
      refused ? "That API key was refused. API key:" : "This service needs an API key. API key:",
    );
    if (entered) sessionStorage.setItem(KEY_ITEM, entered.trim());
    askingForKey = null;
    return Boolean(entered);
  });
  return askingForKey;
}

async function apiFetch(path, options = {}) {
  for (let tries = 0; ; tries++) {
    const key = sessionStorage.getItem(KEY_ITEM);
    const headers = { ...(options.headers || {}) };
    if (key) headers.authorization = `Bearer ${key}`;
    const response = await fetch(path, { ...options, headers });
    if (response.status !== 401 || tries === 3) return response;
    // another request may have been given a key meanwhile: try that one before asking
    if (sessionStorage.getItem(KEY_ITEM) === key && !(await keyFromUser(Boolean(key)))) {
      return response;
    }
  }
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function bubble(role) {
  welcome.hidden = true;
  const div = element("div", `message ${role}`);
  conversation.appendChild(div);
  conversation.scrollTop = conversation.scrollHeight;
  return div;
}

// The answer with each [n] marker as a button that opens citation n.
function answerWithMarkers(text, byNumber) {
  const answer = element("div", "answer");
  for (const part of text.split(/(\[\d+\])/)) {
    const n = part.match(/^\[(\d+)\]$/)?.[1];
    if (n && byNumber.has(n)) {
      const button = element("button", "citation", part);
      button.type = "button";
      button.title = byNumber.get(n).quote;
      button.addEventListener("click", () => showSource(byNumber.get(n)));
      answer.appendChild(button);
    } else {
      answer.appendChild(document.createTextNode(part));
    }
  }
  return answer;
}

// "(Reuters, 2 July 2021)": who published a source and when, as far as the article says.
function byline(c) {
  const when = c.published
    ? new Date(`${c.published}T00:00:00Z`).toLocaleDateString("en-GB", {
        day: "numeric", month: "long", year: "numeric", timeZone: "UTC",
      })
    : null;
  const parts = [c.publisher, when].filter(Boolean);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

// Sources stay one line each, folded away: the answer is what the reader came for.
function sourceList(citations) {
  const details = element("details", "sources");
  details.appendChild(element("summary", "", `Sources (${citations.length})`));
  const list = element("ol");
  for (const c of citations) {
    const link = element("button", "source-link", `[${c.n}] ${c.title}${byline(c)}: “${c.quote}”`);
    link.type = "button";
    link.title = c.quote;
    link.addEventListener("click", () => showSource(c));
    const item = element("li");
    item.appendChild(link);
    list.appendChild(item);
  }
  details.appendChild(list);
  return details;
}

function renderReply(div, text, final) {
  const citations = final?.citations || [];
  const byNumber = new Map(citations.map((c) => [String(c.n), c]));
  div.replaceChildren(answerWithMarkers(answerPart(text), byNumber));
  if (citations.length) div.appendChild(sourceList(citations));
  if (final && !final.answerable) div.classList.add("abstained");
  if (final?.answerable && typeof final.confidence === "number") {
    div.appendChild(confidenceNote(final.confidence));
  }
  if (final?.read_as) {
    div.appendChild(element("p", "read-as", `Read as “${final.read_as}”`));
  }
}

// The confidence is calibrated: of answers given this sure, about this share are right.
function confidenceNote(confidence) {
  const percent = Math.round(confidence * 100);
  const note = element("p", "confidence", `Confidence ${percent}%`);
  note.title = `About ${percent} in 100 answers given with this confidence are right.`;
  return note;
}

// The streamed reply ends with a plain-text "Sources:" list for other clients; the page
// shows its own list instead.
function answerPart(text) {
  const cut = text.indexOf("\n\nSources:");
  return (cut < 0 ? text : text.slice(0, cut)).trim();
}

async function showSource(citation) {
  const response = await apiFetch(`/documents/${encodeURIComponent(citation.doc_id)}`);
  if (!response.ok) return;
  const doc = await response.json();
  document.getElementById("source-title").textContent = doc.title;
  const body = document.getElementById("source-text");
  const mark = element("mark", "", doc.text.slice(citation.start, citation.end));
  body.replaceChildren(
    document.createTextNode(doc.text.slice(0, citation.start)),
    mark,
    document.createTextNode(doc.text.slice(citation.end)),
  );
  panel.hidden = false;
  mark.scrollIntoView({ block: "center" });
}

function closeSource() {
  panel.hidden = true;
}

document.getElementById("close-source").addEventListener("click", closeSource);
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !panel.hidden) closeSource();
});

async function streamReply(reply) {
  const response = await apiFetch("/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "rag", messages: history, stream: true }),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({}));
    const message = problem.error?.message || problem.error;
    throw new Error(typeof message === "string" ? message : `HTTP ${response.status}`);
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const answer = element("div", "answer");
  reply.replaceChildren(answer);
  let buffer = "";
  let text = "";
  let final = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    const events = buffer.split("\n\n");
    buffer = events.pop();
    for (const event of events) {
      const data = event.replace(/^data: /, "");
      if (data === "[DONE]") continue;
      const chunk = JSON.parse(data);
      text += chunk.choices[0].delta.content || "";
      answer.textContent = answerPart(text);
      if (chunk.choices[0].finish_reason) final = chunk;
    }
  }
  if (!final) throw new Error("the answer was cut off");
  renderReply(reply, text, final);
  return text;
}

async function ask(question) {
  history.push({ role: "user", content: question });
  const asked = bubble("user");
  asked.textContent = question;
  const reply = bubble("assistant");
  reply.appendChild(element("div", "answer", "…"));
  try {
    const text = await streamReply(reply);
    history.push({ role: "assistant", content: text });
  } catch (error) {
    history.pop();
    reply.classList.add("error");
    reply.replaceChildren(element("div", "answer", `Could not get an answer: ${error.message}`));
    const retry = element("button", "retry", "Retry");
    retry.type = "button";
    retry.addEventListener("click", () => {
      asked.remove();
      reply.remove();
      submit(question);
    });
    reply.appendChild(retry);
  }
  conversation.scrollTop = conversation.scrollHeight;
}

async function submit(question) {
  send.disabled = true;
  await ask(question);
  send.disabled = false;
  checkLength();
  input.focus();
}

// A pasted question over the limit is not cut silently: say so and hold the send button.
function checkLength() {
  const over = input.value.length > MAX_QUESTION_CHARS;
  tooLong.hidden = !over;
  tooLong.textContent = over
    ? `${input.value.length.toLocaleString("en")} characters: questions are limited to ` +
      `${MAX_QUESTION_CHARS.toLocaleString("en")}. Shorten it to send.`
    : "";
  input.setAttribute("aria-invalid", String(over));
  send.disabled = over;
  return !over;
}

input.addEventListener("input", checkLength);

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (!question || !checkLength()) return;
  input.value = "";
  submit(question);
});

// The empty page: example questions to click, and what the index holds.
async function fillWelcome() {
  const json = (path, fallback) =>
    apiFetch(path).then((r) => (r.ok ? r.json() : fallback)).catch(() => fallback);
  const [examples, documents, health] = await Promise.all([
    json("/examples", { questions: [] }),
    json("/documents?limit=50", null),
    json("/health", null),
  ]);
  const box = document.getElementById("examples");
  for (const question of examples.questions) {
    const button = element("button", "example", question);
    button.type = "button";
    button.addEventListener("click", () => submit(question));
    box.appendChild(button);
  }
  if (documents && health) {
    const count = health.documents;
    document.getElementById("article-count").textContent =
      `${count.toLocaleString("en")} indexed article${count === 1 ? "" : "s"}`;
    const list = document.getElementById("article-list");
    for (const doc of documents) list.appendChild(element("li", "", doc.title));
    if (count > documents.length) {
      list.appendChild(element("li", "", `and ${(count - documents.length).toLocaleString("en")} more`));
    }
  } else {
    document.getElementById("articles").hidden = true;
  }
}

fillWelcome();
