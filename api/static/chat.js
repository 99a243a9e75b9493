// Chat page: streams answers from /v1/chat/completions and shows cited sentences in context.
// Document text is only ever inserted as text nodes, never as HTML.
"use strict";

const conversation = document.getElementById("conversation");
const form = document.getElementById("ask");
const input = document.getElementById("question");
const send = document.getElementById("send");
const history = [];

if (new URLSearchParams(location.search).has("embed")) document.body.classList.add("embed");

function bubble(role) {
  const div = document.createElement("div");
  div.className = `message ${role}`;
  conversation.appendChild(div);
  conversation.scrollTop = conversation.scrollHeight;
  return div;
}

// Text with [n] markers, where each marker becomes a button that opens citation n.
function renderReply(div, text, citations) {
  div.replaceChildren();
  const byNumber = new Map(citations.map((c) => [String(c.n), c]));
  for (const part of text.split(/(\[\d+\])/)) {
    const n = part.match(/^\[(\d+)\]$/)?.[1];
    if (n && byNumber.has(n)) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "citation";
      button.textContent = part;
      button.title = byNumber.get(n).quote;
      button.addEventListener("click", () => showSource(byNumber.get(n)));
      div.appendChild(button);
    } else {
      div.appendChild(document.createTextNode(part));
    }
  }
}

async function showSource(citation) {
  const response = await fetch(`/documents/${encodeURIComponent(citation.doc_id)}`);
  if (!response.ok) return;
  const doc = await response.json();
  const panel = document.getElementById("source");
  document.getElementById("source-title").textContent = doc.title;
  const body = document.getElementById("source-text");
  const mark = document.createElement("mark");
  mark.textContent = doc.text.slice(citation.start, citation.end);
  body.replaceChildren(
    document.createTextNode(doc.text.slice(0, citation.start)),
    mark,
    document.createTextNode(doc.text.slice(citation.end)),
  );
  panel.hidden = false;
  mark.scrollIntoView({ block: "center" });
}

document.getElementById("close-source").addEventListener("click", () => {
  document.getElementById("source").hidden = true;
});

async function ask(question) {
  history.push({ role: "user", content: question });
  bubble("user").textContent = question;
  const reply = bubble("assistant");
  let text = "";
  let final = null;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "rag", messages: history, stream: true }),
    });
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      throw new Error(problem.error || `HTTP ${response.status}`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
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
        reply.textContent = text;
        if (chunk.choices[0].finish_reason) final = chunk;
      }
    }
    renderReply(reply, text, final?.citations || []);
    if (final && !final.answerable) reply.classList.add("abstained");
    history.push({ role: "assistant", content: text });
  } catch (error) {
    reply.classList.add("abstained");
    reply.textContent = `Something went wrong: ${error.message}`;
    history.pop();
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const question = input.value.trim();
  if (!question) return;
  input.value = "";
  send.disabled = true;
  await ask(question);
  send.disabled = false;
  input.focus();
});
