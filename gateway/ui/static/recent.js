// The tasks this browser started, newest first, in localStorage: the agent each was sent to (the gateway's
// task list does not say), for reopening one from the list or the address after a reload.

import { store, stored } from "./storage.js";

const KEY = "a2a-console.recent-tasks";
const LIMIT = 30;

function read() {
  try {
    const entries = JSON.parse(stored(KEY) || "[]");
    return Array.isArray(entries) ? entries.filter((entry) => entry && typeof entry.id === "string") : [];
  } catch {
    return [];
  }
}

/** Storage full or disabled (private browsing): the list lives as long as the page. */
function write(entries) {
  store(KEY, JSON.stringify(entries.slice(0, LIMIT)));
}

export class RecentTasks {
  constructor() {
    this.entries = read();
  }

  /** Adds a task at the top (or moves it there): `{id, agent, title, state}`. */
  remember(entry) {
    const known = this.entries.find((item) => item.id === entry.id);
    this.entries = [
      { ...known, ...entry, updated: new Date().toISOString() },
      ...this.entries.filter((item) => item.id !== entry.id),
    ];
    write(this.entries);
  }

  /** Records a task's last known state, in place; false when the task is not in the list. */
  update(id, state) {
    const entry = this.entries.find((item) => item.id === id);
    if (!entry || entry.state === state) return false;
    entry.state = state;
    entry.updated = new Date().toISOString();
    write(this.entries);
    return true;
  }

  get(id) {
    return this.entries.find((item) => item.id === id);
  }

  clear() {
    this.entries = [];
    write(this.entries);
  }
}

/** The first words of a message's text, for the list. */
export function titleOf(text, words = 8) {
  const all = text.trim().split(/\s+/);
  const head = all.slice(0, words).join(" ");
  return all.length > words ? `${head} …` : head || "(no text)";
}
