// Enclave web UI: a little JavaScript on server-rendered pages. No build step.
"use strict";

const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content ?? "";

async function api(method, url, body) {
  const options = { method, headers: { "X-CSRF-Token": csrf() } };
  if (body instanceof FormData) options.body = body;
  else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error?.message ?? response.statusText);
  return data;
}

function element(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

// -- chat ---------------------------------------------------------------------------------

let conversationId = null;

function renderSources(container, answer, labels) {
  container.querySelector(".sources")?.remove();
  const box = element("div", { class: "sources", "data-testid": "sources" });
  if (!answer.used_search) {
    box.append(element("p", {}, labels.noSearch));
  } else if (answer.abstained) {
    box.append(element("p", { class: "abstained", "data-testid": "abstained" }, labels.abstained));
  } else if (!answer.sources.length) {
    box.append(element("p", {}, labels.noSources));
  } else {
    if (answer.search_query && answer.search_query !== answer.question) {
      box.append(element("p", { class: "searched", "data-testid": "search-query" }, `${labels.searchedFor} ${answer.search_query}`));
    }
    if (!answer.grounded) box.append(element("p", { class: "ungrounded", "data-testid": "ungrounded" }, labels.ungrounded));
    box.append(element("h3", {}, labels.sources));
    const cited = new Map(answer.citations.map((c) => [c.number, c]));
    answer.sources.forEach((source, index) => {
      const number = index + 1;
      const citation = cited.get(number);
      const unit = source.page_unit === "slide" ? labels.slide : labels.page;
      const page = source.page !== null ? `, ${unit} ${source.page}` : "";
      const summary = element("summary", {}, `[${number}] ${source.title} (${source.file_name}${page})`);
      if (citation?.inferred) summary.append(` — ${labels.inferred}`);
      const details = element("details", { class: citation ? "cited" : "shown", "data-document": source.document_id },
        summary, excerpt(source.text, citation?.quote),
        element("a", { href: `/documents/${source.document_id}` }, source.file_name));
      box.append(details);
    });
  }
  container.append(box);
}

// The passage, with the sentence that supports the answer highlighted (offsets into the text).
function excerpt(text, quote) {
  const box = element("div", { class: "excerpt" });
  if (!quote) {
    box.append(text);
    return box;
  }
  box.append(text.slice(0, quote.start), element("mark", { "data-testid": "quote" }, text.slice(quote.start, quote.end)), text.slice(quote.end));
  return box;
}

async function ask(form) {
  const labels = form.dataset;
  const box = form.querySelector("#question");
  const question = box.value.trim();
  if (!question) return;
  box.value = ""; // it stands above the answer now; the box is ready for the next one
  const messages = document.getElementById("messages");
  messages.append(element("div", { class: "message user" }, question));
  const reply = element("div", { class: "message assistant", "data-testid": "answer" });
  const text = element("div", { class: "answer" }, labels.thinking);
  reply.append(text);
  messages.append(reply);
  const body = {
    question,
    use_search: form.querySelector("#use-search").checked,
    search: form.querySelector("#search").value.trim() || null,
    k: Number(form.querySelector("#k").value) || 5,
    conversation_id: conversationId,
    stream: true,
  };
  form.querySelector("#ask").disabled = true;
  try {
    const response = await fetch("/api/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error((await response.json()).error?.message ?? response.statusText);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let first = true;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "{}");
        if (event === "conversation" && conversationId !== data.conversation_id) {
          conversationId = data.conversation_id;
          const link = element("a", { href: "#", "data-conversation": conversationId }, question);
          document.getElementById("history").prepend(element("li", {}, link));
        }
        if (event === "token") {
          if (first) { text.textContent = ""; first = false; }
          text.textContent += data.text;
        }
        if (event === "answer") { text.textContent = data.answer; renderSources(reply, data, labels); reply.dataset.done = "true"; }
        if (event === "error") throw new Error(data.message);
      }
    }
  } catch (error) {
    text.textContent = `⚠ ${error.message}`;
    if (!box.value) box.value = question; // to try again
    reply.dataset.done = "true";
  } finally {
    form.querySelector("#ask").disabled = false;
  }
}

async function openConversation(id) {
  const data = await api("GET", `/api/conversations/${id}`);
  conversationId = id;
  const messages = document.getElementById("messages");
  messages.replaceChildren();
  for (const message of data.messages) {
    messages.append(element("div", { class: `message ${message.role}` }, message.content));
  }
}

// -- library, settings, admin --------------------------------------------------------------

async function onLibraryClick(event) {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const id = button.closest("tr").dataset.document;
  try {
    if (button.dataset.action === "delete") {
      if (!confirm("Delete?")) return;
      await api("DELETE", `/api/documents/${id}`);
    } else if (button.dataset.action === "reindex") {
      await api("POST", `/api/documents/${id}/reindex`);
    } else if (button.dataset.action === "acl") {
      const current = await api("GET", `/api/documents/${id}/acl`);
      const entered = prompt("user:NAME, group:NAME", current.allow.join(", "));
      if (entered === null) return;
      await api("PUT", `/api/documents/${id}/acl`, { allow: entered.split(",").map((s) => s.trim()).filter(Boolean) });
    }
    location.reload();
  } catch (error) {
    alert(error.message);
  }
}

async function upload(form) {
  const status = form.querySelector("#upload-status");
  const data = new FormData();
  data.append("file", form.querySelector("#file").files[0]);
  for (const entry of form.querySelector("#allow").value.split(",")) {
    if (entry.trim()) data.append("allow", entry.trim());
  }
  try {
    const result = await api("POST", "/api/documents", data);
    status.textContent = `✓ ${result.file_name} (${result.chunks})`;
    setTimeout(() => location.reload(), 300);
  } catch (error) {
    status.textContent = `⚠ ${error.message}`;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const askForm = document.getElementById("ask-form");
  askForm?.addEventListener("submit", (event) => { event.preventDefault(); ask(askForm); });
  askForm?.querySelector("#question").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); ask(askForm); }
  });
  document.getElementById("new-chat")?.addEventListener("click", () => {
    conversationId = null;
    document.getElementById("messages").replaceChildren();
  });
  document.getElementById("history")?.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-conversation]");
    if (link) { event.preventDefault(); openConversation(link.dataset.conversation); }
  });
  document.getElementById("documents")?.addEventListener("click", onLibraryClick);
  document.getElementById("admin-documents")?.addEventListener("click", onLibraryClick);
  document.getElementById("admin-tokens")?.addEventListener("click", async (event) => {
    const id = event.target.dataset.adminRevoke;
    if (id) { await api("DELETE", `/api/admin/tokens/${id}`); location.reload(); }
  });
  const uploadForm = document.getElementById("upload-form");
  uploadForm?.addEventListener("submit", (event) => { event.preventDefault(); upload(uploadForm); });
  const tokenForm = document.getElementById("token-form");
  tokenForm?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const result = await api("POST", "/api/tokens", { name: tokenForm.querySelector("#token-name").value });
    tokenForm.querySelector("#token-output").replaceChildren(tokenForm.dataset.once, " ", element("code", {}, result.token));
  });
  document.getElementById("tokens")?.addEventListener("click", async (event) => {
    const id = event.target.dataset.revoke;
    if (id) { await api("DELETE", `/api/tokens/${id}`); location.reload(); }
  });
  const userForm = document.getElementById("user-form");
  userForm?.addEventListener("submit", async (event) => {
    event.preventDefault();
    const groups = userForm.querySelector("#new-groups").value.split(",").map((s) => s.trim()).filter(Boolean);
    try {
      await api("POST", "/api/users", {
        name: userForm.querySelector("#new-name").value.trim(), groups,
        password: userForm.querySelector("#new-password").value || null,
        admin: userForm.querySelector("#new-admin").checked,
      });
      location.reload();
    } catch (error) {
      userForm.querySelector("#user-status").textContent = `⚠ ${error.message}`;
    }
  });
  document.getElementById("users")?.addEventListener("click", async (event) => {
    const pair = event.target.dataset.leave;
    if (pair) { await api("DELETE", `/api/users/${pair}`.replace(/\/([^/]+)$/, "/groups/$1")); location.reload(); }
  });
});
