// The web console: pick an agent, send a message (non-blocking `message/send`), then draw the task from its
// browser event stream; beside it, the gateway's list of the caller's tasks (A2A 1.0 `ListTasks`). No
// framework and no build step: the browser loads these modules as they are.

import { Credential } from "./credential.js";
import { element } from "./dom.js";
import { RecentTasks, titleOf } from "./recent.js";
import { RpcClient, RpcError, newId } from "./rpc.js";
import { TaskStream } from "./stream.js";
import { TaskList, pageSizeFrom } from "./task-list.js";
import { INTERRUPTED, TERMINAL, TaskView } from "./task-view.js";

// The pasted credential, an API key or a JWT.
const CREDENTIAL = "a2a-console.api-key";
const AGENT = "a2a-console.agent";
// Consecutive times EventSource may give up on one task before the page stops and says so.
const MAX_GIVE_UPS = 8;
// ListTasks is an A2A 1.0 method: the gateway serves it to requests that ask for 1.0.
const V1 = { "A2A-Version": "1.0" };
const STREAM_LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Connection lost, reconnecting…",
};

const byId = (id) => document.getElementById(id);
const ui = {
  info: byId("gateway-info"),
  composer: byId("composer"),
  agent: byId("agent"),
  agentDescription: byId("agent-description"),
  credentialField: byId("credential-field"),
  credentialLabel: byId("credential-label"),
  credential: byId("credential"),
  credentialHint: byId("credential-hint"),
  message: byId("message"),
  mode: byId("composer-mode"),
  send: byId("send"),
  newTask: byId("new-task"),
  error: byId("error"),
  task: byId("task"),
  taskId: byId("task-id"),
  state: byId("task-state"),
  stream: byId("stream-status"),
  temporal: byId("temporal-link"),
  cancel: byId("cancel"),
  taskError: byId("task-error"),
  timeline: byId("timeline"),
  taskList: {
    list: byId("task-list"),
    empty: byId("task-list-empty"),
    error: byId("task-list-error"),
    summary: byId("task-list-summary"),
    more: byId("task-list-more"),
    filters: byId("task-list-filters"),
    state: byId("task-list-state"),
    context: byId("task-list-context"),
    refresh: byId("task-list-refresh"),
  },
};

function stored(key) {
  try {
    return localStorage.getItem(key) || "";
  } catch {
    return "";
  }
}

function store(key, value) {
  try {
    if (value) localStorage.setItem(key, value);
    else localStorage.removeItem(key);
  } catch {
    // Storage disabled: the value lasts as long as the page.
  }
}

function describe(err) {
  if (err instanceof RpcError && err.code !== null) return `${err.message} (JSON-RPC error ${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

class Console {
  constructor(config) {
    this.config = config;
    this.credential = new Credential(config.auth);
    this.rpc = new RpcClient({ credential: this.credential });
    // Which agent (and first words) each task sent from this browser had: ListTasks does not say.
    this.recent = new RecentTasks();
    this.tasks = new TaskList(ui.taskList, {
      load: (params) => this.rpc.call(this._endpoint(ui.agent.value), "ListTasks", params, { headers: V1 }),
      onOpen: (taskId) => this.show(taskId),
      describe,
      temporalHref: (taskId) => this._temporalHref(taskId),
      pageSize: pageSizeFrom(window.location.search),
    });
    // The task on screen: {taskId, agent, view, stream, giveUps}.
    this.session = null;
    this.sending = false;
  }

  start() {
    this._agents();
    if (this.credential.enabled) {
      ui.credentialField.hidden = false;
      ui.credentialLabel.textContent = this.credential.label;
      if (this.credential.hint) ui.credentialHint.prepend(`${this.credential.hint} `);
      ui.credential.value = stored(CREDENTIAL);
      this.credential.value = ui.credential.value.trim();
      ui.credential.addEventListener("input", () => {
        this.credential.value = ui.credential.value.trim();
        store(CREDENTIAL, this.credential.value);
        this.tasks.refreshSoon(500);
      });
    }
    ui.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    ui.message.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        ui.composer.requestSubmit();
      }
    });
    ui.cancel.addEventListener("click", () => this.cancel());
    ui.newTask.addEventListener("click", () => this.leave());
    window.addEventListener("hashchange", () => this._openFromHash());
    this._controls();
    this.tasks.start();
    this._openFromHash();
  }

  /** `#task=<id>` opens that task (loaded from its event log, streaming while it runs); no task in the
   * hash goes back to starting a new one. */
  _openFromHash() {
    const wanted = new URLSearchParams(window.location.hash.slice(1)).get("task");
    if (!wanted) {
      if (this.session) this.leave();
      return;
    }
    if (wanted !== this.session?.taskId) this.open(wanted, this._agentOf(wanted));
  }

  /** Opens a task picked from the list, by way of the address (`#task=<id>`): Back returns to the last. */
  show(taskId) {
    const hash = `#task=${encodeURIComponent(taskId)}`;
    if (window.location.hash === hash) this.open(taskId, this._agentOf(taskId));
    else window.location.hash = hash;
  }

  /** The agent a task was sent to from this browser; else the default one (any agent's endpoint reads
   * and continues any of the caller's tasks). */
  _agentOf(taskId) {
    const agent = this.recent.get(taskId)?.agent;
    return agent && this._agent(agent) ? agent : this.config.defaultAgent;
  }

  _agents() {
    const agents = this.config.agents || [];
    const remembered = stored(AGENT);
    ui.agent.replaceChildren(
      ...agents.map((agent) => {
        const name = agent.card?.name;
        const label = name && name !== agent.name ? `${name} (${agent.name})` : agent.name;
        return element("option", { value: agent.name }, label);
      }),
    );
    const names = agents.map((agent) => agent.name);
    ui.agent.value = names.includes(remembered) ? remembered : this.config.defaultAgent;
    ui.agent.addEventListener("change", () => {
      store(AGENT, ui.agent.value);
      this._describeAgent();
    });
    this._describeAgent();
    const parts = [`${agents.length} agent${agents.length === 1 ? "" : "s"}`];
    if (this.credential.enabled) parts.push(this.credential.description);
    ui.info.replaceChildren(parts.join(" · "));
    if (this.config.temporalUiUrl) {
      ui.info.append(
        " · ",
        element("a", { href: this.config.temporalUiUrl, target: "_blank", rel: "noopener" }, "Temporal UI"),
      );
    }
  }

  _describeAgent() {
    const agent = this._agent(ui.agent.value);
    const card = agent?.card || {};
    const skills = (card.skills || []).map((skill) => skill.name).filter(Boolean);
    ui.agentDescription.textContent = [card.description, skills.length ? `Skills: ${skills.join(", ")}` : ""]
      .filter(Boolean)
      .join(" ");
  }

  _agent(name) {
    return (this.config.agents || []).find((agent) => agent.name === name);
  }

  _endpoint(agent) {
    return this._agent(agent)?.endpoint || `/agents/${encodeURIComponent(agent)}`;
  }

  _temporalHref(taskId) {
    const base = this.config.temporalUiUrl;
    if (!base) return null;
    const namespace = encodeURIComponent(this.config.temporalNamespace || "default");
    // The workflow id is the task id.
    return `${base.replace(/\/+$/, "")}/namespaces/${namespace}/workflows/${encodeURIComponent(taskId)}`;
  }

  _eventsUrl(taskId) {
    const url = new URL(`/tasks/${encodeURIComponent(taskId)}/events`, window.location.href);
    // EventSource cannot set headers: the gateway takes the credential from the query string on this route.
    return this.credential.addTo(url).toString();
  }

  async send() {
    if (this.sending) return;
    const text = ui.message.value.trim();
    if (!text) {
      this._error("Type a message first.");
      ui.message.focus();
      return;
    }
    const followUp = this.session && this.session.view.interrupted ? this.session : null;
    const agent = followUp ? followUp.agent : ui.agent.value;
    const message = { kind: "message", role: "user", messageId: newId(), parts: [{ kind: "text", text }] };
    if (followUp) {
      message.taskId = followUp.taskId;
      message.contextId = followUp.view.contextId;
    }
    this.sending = true;
    this._error(null);
    this._controls();
    try {
      const result = await this.rpc.call(this._endpoint(agent), "message/send", {
        message,
        configuration: { blocking: false },
      });
      ui.message.value = "";
      this.tasks.refreshSoon(300);
      if (followUp) {
        followUp.view.userMessageSent(message);
        if (followUp === this.session && !followUp.stream.active) followUp.stream.open();
      } else if (result && result.kind === "task") {
        this.recent.remember({ id: result.id, agent, title: titleOf(text), state: result.status.state });
        this.open(result.id, agent, result);
      } else {
        this._error(`The agent answered with a ${result?.kind || "result"} instead of a task.`);
      }
    } catch (err) {
      this._error(describe(err));
    } finally {
      this.sending = false;
      this._controls();
    }
  }

  /** Shows task `taskId` and streams its events from the beginning of its log. */
  open(taskId, agent, task = null) {
    this.session?.stream.close();
    const session = { taskId, agent, giveUps: 0 };
    session.view = new TaskView(
      { timeline: ui.timeline, state: ui.state, error: ui.taskError },
      { taskId, onState: (state) => this._stateChanged(session, state) },
    );
    session.stream = new TaskStream(() => this._eventsUrl(taskId), {
      onEvent: (event) => this._event(session, event),
      onStatus: (status, drops) => this._streamStatus(session, status, drops),
      onGiveUp: () => this._gaveUp(session),
    });
    this.session = session;
    ui.task.hidden = false;
    ui.taskId.textContent = taskId;
    const href = this._temporalHref(taskId);
    ui.temporal.hidden = !href;
    if (href) ui.temporal.href = href;
    else ui.temporal.removeAttribute("href");
    if (task) session.view.applyTask(task);
    session.stream.open(null);
    window.history.replaceState(null, "", `#task=${encodeURIComponent(taskId)}`);
    this.tasks.setCurrent(taskId);
    this._controls();
  }

  /** Back to starting a new task; the shown one keeps running on the gateway. */
  leave() {
    this.session?.stream.close();
    this.session = null;
    ui.task.hidden = true;
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
    this.tasks.setCurrent(null);
    this._controls();
    ui.message.focus();
  }

  async cancel() {
    const session = this.session;
    if (!session) return;
    ui.cancel.disabled = true;
    try {
      const task = await this.rpc.call(this._endpoint(session.agent), "tasks/cancel", { id: session.taskId });
      if (session === this.session) session.view.applyResult(task);
    } catch (err) {
      if (session === this.session) this._error(describe(err));
    } finally {
      this._controls();
    }
  }

  _event(session, event) {
    if (session !== this.session) return;
    session.giveUps = 0;
    session.view.apply(event);
    if (session.view.finished) session.stream.close();
  }

  _stateChanged(session, state) {
    this.recent.update(session.taskId, state);
    // The turn or the task (and its stream) ended: the list asks the gateway again, unless it already
    // shows the task so (a finished task opened from the list replays to the state listed).
    if ((TERMINAL.has(state) || INTERRUPTED.has(state)) && !this.tasks.shows(session.taskId, state)) {
      this.tasks.refreshSoon();
    }
    this.tasks.updateState(session.taskId, state);
    if (session === this.session) this._controls();
  }

  _streamStatus(session, status, drops) {
    if (session !== this.session) return;
    ui.stream.dataset.status = status;
    ui.stream.dataset.drops = String(drops);
    const ended = session.view.finished ? "Stream ended" : "Not streaming";
    ui.stream.textContent = STREAM_LABELS[status] || ended;
  }

  /** EventSource stopped on its own (HTTP 204 or an error status): ask the gateway about the task. */
  async _gaveUp(session) {
    if (session !== this.session || session.view.finished) return;
    session.giveUps += 1;
    let task;
    try {
      task = await this.rpc.call(this._endpoint(session.agent), "tasks/get", { id: session.taskId });
    } catch (err) {
      if (session !== this.session) return;
      // A JSON-RPC answer (task not found, not allowed…) will not change by retrying; a gateway that
      // cannot be reached or answers -32603 may come back.
      if (err instanceof RpcError && err.code !== null && err.code !== -32603) {
        session.stream.close();
        this._error(`The task's events cannot be read: ${describe(err)}`);
        return;
      }
      this._retry(session, err);
      return;
    }
    if (session !== this.session) return;
    if (TERMINAL.has(task.status.state)) {
      // The log has nothing more for this page: the task as the gateway has it is the end.
      session.view.applyResult(task, { settle: true });
      session.stream.close();
      return;
    }
    this._retry(session, null);
  }

  _retry(session, err) {
    if (session.giveUps > MAX_GIVE_UPS) {
      session.stream.close();
      const why = err ? `: ${describe(err)}` : "";
      this._error(
        `The task's event stream is unavailable${why}. Reopen the task from the list to try again.`,
      );
      return;
    }
    session.stream.retry();
  }

  _controls() {
    const view = this.session?.view;
    const followUp = Boolean(view?.interrupted);
    ui.send.disabled = this.sending || !(this.config.agents || []).length;
    ui.agent.disabled = followUp || !(this.config.agents || []).length;
    if (followUp) ui.agent.value = this.session.agent;
    ui.newTask.hidden = !this.session;
    ui.send.textContent = followUp ? "Reply" : "Send";
    ui.mode.textContent = followUp
      ? `The task is ${view.state}: your message continues it. “New task” starts another one.`
      : "Sending starts a new task with the chosen agent.";
    ui.cancel.disabled = !view || view.terminal || !view.state;
  }

  _error(text) {
    ui.error.hidden = !text;
    ui.error.textContent = text || "";
  }
}

async function loadConfig() {
  const response = await fetch(new URL("config.json", import.meta.url), {
    headers: { accept: "application/json" },
  });
  if (!response.ok) throw new Error(`GET config.json answered HTTP ${response.status}`);
  return response.json();
}

try {
  const app = new Console(await loadConfig());
  app.start();
  document.body.dataset.ready = "true";
} catch (err) {
  ui.info.textContent = "";
  ui.error.hidden = false;
  ui.error.textContent = `The console could not start: ${describe(err)}`;
}
