// The web console: pick an agent, send a message (non-blocking `message/send`) with the options chosen
// beside it, then draw the task from its browser event stream; beside it, the gateway's list of the
// caller's tasks (A2A 1.0 `ListTasks`). A task opened by its address (`#task=<id>`) is drawn first from
// `tasks/get`, then from its event log while there is one. No framework and no build step: the browser
// loads these modules as they are.

import { Agents } from "./agents.js";
import { Credential } from "./credential.js";
import { MessageOptions } from "./options.js";
import { RecentTasks, titleOf } from "./recent.js";
import { RpcClient, describe, newId } from "./rpc.js";
import { store, stored } from "./storage.js";
import { TaskList, pageSizeFrom } from "./task-list.js";
import { TaskPanel } from "./task-panel.js";

// The pasted credential, an API key or a JWT.
const CREDENTIAL = "a2a-console.api-key";
const AGENT = "a2a-console.agent";
// ListTasks is an A2A 1.0 method: the gateway serves it to requests that ask for 1.0.
const V1 = { "A2A-Version": "1.0" };

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
  notFound: byId("not-found"),
  notFoundText: byId("not-found-text"),
  notFoundNew: byId("not-found-new"),
  task: byId("task"),
  taskId: byId("task-id"),
  state: byId("task-state"),
  stream: byId("stream-status"),
  temporal: byId("temporal-link"),
  cancel: byId("cancel"),
  taskError: byId("task-error"),
  timeline: byId("timeline"),
  artifacts: byId("task-artifacts"),
  artifactList: byId("task-artifact-list"),
  options: {
    presets: byId("option-presets"),
    chunks: byId("option-chunks"),
    delay: byId("option-delay"),
    end: byId("option-end"),
    file: byId("option-file"),
    fileInfo: byId("option-file-info"),
    data: byId("option-data"),
    problem: byId("options-problem"),
    preview: byId("options-preview"),
  },
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

class Console {
  constructor(config) {
    this.agents = new Agents(config);
    this.credential = new Credential(config.auth);
    this.rpc = new RpcClient({ credential: this.credential });
    // Which agent (and first words) each task sent from this browser had: ListTasks does not say.
    this.recent = new RecentTasks();
    this.options = new MessageOptions(ui.options, { text: () => ui.message.value.trim() });
    this.tasks = new TaskList(ui.taskList, {
      load: (params) =>
        this.rpc.call(this.agents.endpoint(ui.agent.value), "ListTasks", params, { headers: V1 }),
      onOpen: (taskId) => this.show(taskId),
      describe,
      temporalHref: (taskId) => this.agents.temporalHref(taskId),
      pageSize: pageSizeFrom(window.location.search),
    });
    this.panel = new TaskPanel(ui, {
      rpc: this.rpc,
      agents: this.agents,
      credential: this.credential,
      tasks: this.tasks,
      recent: this.recent,
      error: (text) => this._error(text),
      onChange: () => this._controls(),
    });
    this.sending = false;
  }

  start() {
    this.agents.fill(ui.agent, ui.agentDescription, stored(AGENT));
    ui.agent.addEventListener("change", () => {
      store(AGENT, ui.agent.value);
      this.agents.describe(ui.agent.value, ui.agentDescription);
    });
    this.agents.summarize(ui.info, this.credential);
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
    ui.message.addEventListener("input", () => this.options.refresh());
    ui.cancel.addEventListener("click", () => this.panel.cancel());
    ui.newTask.addEventListener("click", () => this.leave());
    ui.notFoundNew.addEventListener("click", () => this.leave());
    window.addEventListener("hashchange", () => this._openFromHash());
    this.options.start();
    this._controls();
    this.tasks.start();
    this._openFromHash();
  }

  /** `#task=<id>` opens that task; no task in the hash goes back to starting a new one. */
  _openFromHash() {
    const wanted = new URLSearchParams(window.location.hash.slice(1)).get("task");
    if (!wanted) {
      if (this.panel.session || this.panel.notFound) this.leave();
      return;
    }
    if (wanted !== this.panel.session?.taskId) this.panel.load(wanted, this._agentOf(wanted));
  }

  /** Opens a task picked from the list, by way of the address (`#task=<id>`): Back returns to the last. */
  show(taskId) {
    const hash = `#task=${encodeURIComponent(taskId)}`;
    if (window.location.hash === hash) this.panel.load(taskId, this._agentOf(taskId));
    else window.location.hash = hash;
  }

  /** The agent a task was sent to from this browser; else the default one (any agent's endpoint reads
   * and continues any of the caller's tasks). */
  _agentOf(taskId) {
    const agent = this.recent.get(taskId)?.agent;
    return agent && this.agents.has(agent) ? agent : this.agents.defaultAgent;
  }

  async send() {
    if (this.sending) return;
    const text = ui.message.value.trim();
    const chosen = this.options.chosen();
    if (chosen.problem) {
      // The panel says what is wrong.
      this._error(null);
      chosen.field.focus();
      return;
    }
    if (!text && !chosen.parts.length) {
      this._error("Type a message first.");
      ui.message.focus();
      return;
    }
    const shown = this.panel.session;
    const followUp = shown && shown.view.interrupted ? shown : null;
    const agent = followUp ? followUp.agent : ui.agent.value;
    const parts = [...(text ? [{ kind: "text", text }] : []), ...chosen.parts];
    const message = { kind: "message", role: "user", messageId: newId(), parts };
    if (chosen.metadata) message.metadata = chosen.metadata;
    if (followUp) {
      message.taskId = followUp.taskId;
      message.contextId = followUp.view.contextId;
    }
    this.sending = true;
    this._error(null);
    this._controls();
    try {
      const result = await this.rpc.call(this.agents.endpoint(agent), "message/send", {
        message,
        configuration: { blocking: false },
      });
      ui.message.value = "";
      this.options.refresh();
      this.tasks.refreshSoon(300);
      if (followUp) {
        followUp.view.userMessageSent(message);
        if (followUp === this.panel.session && !followUp.stream.active) followUp.stream.open();
      } else if (result && result.kind === "task") {
        this.recent.remember({ id: result.id, agent, title: titleOf(text), state: result.status.state });
        this.panel.open(result.id, agent, result);
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

  /** Back to starting a new task; the shown one keeps running on the gateway. */
  leave() {
    this.panel.leave();
    ui.message.focus();
  }

  _controls() {
    const view = this.panel.session?.view;
    const followUp = Boolean(view?.interrupted);
    const agents = this.agents.count > 0;
    ui.send.disabled = this.sending || !agents;
    ui.agent.disabled = followUp || !agents;
    if (followUp) ui.agent.value = this.panel.session.agent;
    ui.newTask.hidden = !this.panel.session;
    ui.send.textContent = followUp ? "Reply" : "Send";
    ui.mode.textContent = followUp
      ? `The task is ${view.state}: your message continues it. “New task” starts another one.`
      : "Sending starts a new task with the chosen agent.";
    ui.cancel.disabled = !view || view.terminal || !view.state;
    // A reply is the task's next turn: "fail" fails that one.
    this.options.setTurn(followUp ? view.userCount + 1 : 1);
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
