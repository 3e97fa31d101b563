// The gateway's list of the caller's tasks (A2A 1.0 `ListTasks`), newest status first, whoever sent them:
// this browser, another one, or a client of the API. Filtered by state and context; paged by the
// server's opaque `nextPageToken` ("More" appends the next page). States show in the console's 0.2.5
// spelling (`TASK_STATE_INPUT_REQUIRED` -> "input-required"), as the task view shows them.

import { element } from "./dom.js";

const PREFIX = "TASK_STATE_";
// How many tasks a page holds unless the page's URL says otherwise (`?pageSize=`).
export const DEFAULT_PAGE_SIZE = 20;
// A context id typed in the filter is applied once typing pauses this long.
const TYPING_MS = 400;
// The most tasks one ListTasks page may hold (the gateway's limit).
const MAX_PAGE_SIZE = 100;

/** A 1.0 state (`TASK_STATE_INPUT_REQUIRED`) in 0.2.5's spelling (`input-required`). */
export function stateFromV1(state) {
  if (typeof state !== "string" || !state.startsWith(PREFIX)) return "unknown";
  const name = state.slice(PREFIX.length).toLowerCase().replaceAll("_", "-");
  return name === "unspecified" ? "unknown" : name;
}

/** The page size asked of the server: `?pageSize=` of the page's URL when it is an integer (the server
 * checks its range and says so in the list's area), else DEFAULT_PAGE_SIZE. */
export function pageSizeFrom(search) {
  const wanted = new URLSearchParams(search).get("pageSize");
  return wanted !== null && /^-?\d+$/.test(wanted.trim()) ? Number(wanted) : DEFAULT_PAGE_SIZE;
}

/** The start of a long id, for the list; the whole id is in the element's title. */
export function shortId(id, length = 8) {
  return typeof id === "string" && id.length > length ? id.slice(0, length) : String(id ?? "");
}

/** The first user message's text in a 1.0 task's history (roles `ROLE_USER`, parts `{text}`). */
function firstUserText(task) {
  const first = (task.history || []).find((message) => message.role === "ROLE_USER");
  return (first?.parts || [])
    .map((part) => (typeof part.text === "string" ? part.text : ""))
    .join("")
    .trim();
}

function titleOf(text, words = 8) {
  const all = text.split(/\s+/);
  const head = all.slice(0, words).join(" ");
  return all.length > words ? `${head} …` : head;
}

export class TaskList {
  /**
   * `elements`: the sidebar's `{list, empty, error, summary, more, filters, state, context, refresh}`.
   * `load(params)`: the ListTasks result for `params` (rejects with an RpcError). `onOpen(taskId)`: the
   * user picked a task. `describe(err)`: an error's text. `temporalHref(taskId)`: the workflow's page in
   * the Temporal UI, or null. `pageSize`: asked of the server with each page.
   */
  constructor(elements, { load, onOpen, describe, temporalHref, pageSize = DEFAULT_PAGE_SIZE }) {
    this.elements = elements;
    this.load = load;
    this.onOpen = onOpen;
    this.describe = describe;
    this.temporalHref = temporalHref;
    this.pageSize = pageSize;
    this.tasks = [];
    this.nextPageToken = "";
    this.totalSize = null;
    this.current = null;
    // Each load's number: an answer to an older one (filters changed since) is dropped.
    this._generation = 0;
    this._loading = false;
    this._refreshTimer = null;
    this._typingTimer = null;
    this._filtered = { state: "", context: "" };
  }

  start() {
    const { filters, state, context, more, refresh } = this.elements;
    filters.addEventListener("submit", (event) => {
      event.preventDefault();
      this.refresh();
    });
    state.addEventListener("change", () => this.refresh());
    context.addEventListener("input", () => {
      clearTimeout(this._typingTimer);
      this._typingTimer = setTimeout(() => {
        if (context.value.trim() !== this._filtered.context) this.refresh();
      }, TYPING_MS);
    });
    more.addEventListener("click", () => this.more());
    refresh.addEventListener("click", () => this.refresh());
    this.refresh();
  }

  /** Loads the list again in `delayMs` (later calls before then make it one load), as many tasks as it
   * shows: pages the user asked for with "More" stay. */
  refreshSoon(delayMs = 250) {
    clearTimeout(this._refreshTimer);
    this._refreshTimer = setTimeout(() => {
      const shown = Math.min(Math.max(this.pageSize, this.tasks.length), MAX_PAGE_SIZE);
      this.refresh({ pageSize: shown });
    }, delayMs);
  }

  /** The first page for the filters as they are now, replacing the list. */
  async refresh({ pageSize = this.pageSize } = {}) {
    clearTimeout(this._refreshTimer);
    clearTimeout(this._typingTimer);
    this._filtered = { state: this.elements.state.value, context: this.elements.context.value.trim() };
    await this._load(null, pageSize);
  }

  /** The next page, after the tasks shown. */
  async more() {
    if (!this.nextPageToken || this._loading) return;
    await this._load(this.nextPageToken);
  }

  /** Marks the task on screen. */
  setCurrent(taskId) {
    this.current = taskId;
    for (const item of this.elements.list.children) {
      if (item.dataset.taskId === taskId) item.setAttribute("aria-current", "true");
      else item.removeAttribute("aria-current");
    }
  }

  /** Whether the list shows task `taskId` in `state` (0.2.5 spelling). */
  shows(taskId, state) {
    return this._itemOf(taskId)?.dataset.state === state;
  }

  /** The open task's state as its stream tells it, shown before the next load confirms it. */
  updateState(taskId, state) {
    const item = this._itemOf(taskId);
    const pill = item?.querySelector('[data-testid="task-list-state"]');
    if (!pill || !state) return;
    pill.textContent = state;
    pill.dataset.state = state;
    item.dataset.state = state;
  }

  _itemOf(taskId) {
    return [...this.elements.list.children].find((node) => node.dataset.taskId === taskId);
  }

  async _load(pageToken, pageSize = this.pageSize) {
    const generation = ++this._generation;
    const params = { pageSize };
    if (this._filtered.context) params.contextId = this._filtered.context;
    if (this._filtered.state) params.status = this._filtered.state;
    if (pageToken) params.pageToken = pageToken;
    this._busy(true);
    let result;
    try {
      result = await this.load(params);
    } catch (err) {
      if (generation !== this._generation) return;
      this._busy(false);
      this._error(`The task list could not be loaded: ${this.describe(err)}`);
      // A page that did not come cannot be continued; the first one can be asked again.
      if (!pageToken) {
        this.tasks = [];
        this.nextPageToken = "";
        this.totalSize = null;
        this._render();
      }
      return;
    }
    if (generation !== this._generation) return;
    this._busy(false);
    this._error(null);
    const tasks = Array.isArray(result?.tasks) ? result.tasks.filter((task) => task && task.id) : [];
    if (pageToken) {
      const shown = new Set(this.tasks.map((task) => task.id));
      this.tasks = [...this.tasks, ...tasks.filter((task) => !shown.has(task.id))];
    } else {
      this.tasks = tasks;
    }
    this.nextPageToken = typeof result?.nextPageToken === "string" ? result.nextPageToken : "";
    this.totalSize = Number.isInteger(result?.totalSize) ? result.totalSize : null;
    this._render();
  }

  _busy(loading) {
    this._loading = loading;
    this.elements.list.setAttribute("aria-busy", loading ? "true" : "false");
    this.elements.more.disabled = loading;
  }

  _error(text) {
    this.elements.error.hidden = !text;
    this.elements.error.textContent = text || "";
  }

  _render() {
    const { list, empty, summary, more } = this.elements;
    const filtered = Boolean(this._filtered.state || this._filtered.context);
    list.replaceChildren(...this.tasks.map((task) => this._item(task)));
    empty.hidden = this.tasks.length > 0 || !this.elements.error.hidden;
    empty.textContent = filtered ? "No tasks match these filters." : "No tasks yet: send a message to start one.";
    more.hidden = !this.nextPageToken;
    const total = this.totalSize ?? this.tasks.length;
    summary.textContent = this.tasks.length
      ? `Showing ${this.tasks.length} of ${total} task${total === 1 ? "" : "s"}`
      : "";
  }

  _item(task) {
    const state = stateFromV1(task.status?.state);
    const title = titleOf(firstUserText(task));
    const stamp = task.status?.timestamp ? new Date(task.status.timestamp) : null;
    const when = stamp && !Number.isNaN(stamp.getTime()) ? stamp : null;
    const href = this.temporalHref(task.id);
    return element(
      "li",
      {
        "data-testid": "task-list-item",
        "data-task-id": task.id,
        "data-context-id": task.contextId ?? "",
        "data-state": state,
        "aria-current": this.current === task.id ? "true" : null,
      },
      element(
        "button",
        {
          type: "button",
          class: "open",
          title: `Open task ${task.id}`,
          "data-testid": "task-list-open",
          onclick: () => this.onOpen(task.id),
        },
        title ? element("span", { class: "title", "data-testid": "task-list-title" }, title) : null,
        element(
          "span",
          { class: "details" },
          element("span", { class: "state", "data-state": state, "data-testid": "task-list-state" }, state),
          element(
            "span",
            { title: `Task ${task.id}`, "data-testid": "task-list-id" },
            element("span", { class: "visually-hidden" }, "Task "),
            element("code", {}, shortId(task.id)),
          ),
          task.contextId
            ? element(
                "span",
                { title: `Context ${task.contextId}`, "data-testid": "task-list-context" },
                element("span", { "aria-hidden": "true" }, "ctx "),
                element("span", { class: "visually-hidden" }, "context "),
                element("code", {}, shortId(task.contextId)),
              )
            : null,
          when
            ? element(
                "time",
                { datetime: when.toISOString(), "data-testid": "task-list-time" },
                when.toLocaleString(),
              )
            : null,
        ),
      ),
      href
        ? element(
            "a",
            { href, target: "_blank", rel: "noopener", "data-testid": "task-list-temporal-link" },
            "Workflow in the Temporal UI",
          )
        : null,
    );
  }
}
