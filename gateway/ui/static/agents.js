// The gateway's agents as `GET /ui/config.json` lists them: the picker, the chosen agent's description,
// each agent's JSON-RPC endpoint, and a task's workflow in the Temporal UI.

import { element } from "./dom.js";

export class Agents {
  /** `config`: config.json (`agents`, `defaultAgent`, `temporalUiUrl`, `temporalNamespace`). */
  constructor(config) {
    this.config = config;
    this.list = config.agents || [];
    this.defaultAgent = config.defaultAgent;
  }

  get count() {
    return this.list.length;
  }

  /** The agent named `name`, or undefined. */
  find(name) {
    return this.list.find((agent) => agent.name === name);
  }

  has(name) {
    return this.find(name) !== undefined;
  }

  /** Fills the picker (`select`), choosing `remembered` when the gateway still has it; the chosen agent's
   * card goes in `description`. */
  fill(select, description, remembered) {
    select.replaceChildren(
      ...this.list.map((agent) => {
        const name = agent.card?.name;
        const label = name && name !== agent.name ? `${name} (${agent.name})` : agent.name;
        return element("option", { value: agent.name }, label);
      }),
    );
    select.value = this.has(remembered) ? remembered : this.defaultAgent;
    this.describe(select.value, description);
  }

  describe(name, description) {
    const card = this.find(name)?.card || {};
    const skills = (card.skills || []).map((skill) => skill.name).filter(Boolean);
    description.textContent = [card.description, skills.length ? `Skills: ${skills.join(", ")}` : ""]
      .filter(Boolean)
      .join(" ");
  }

  /** The page's header line: how many agents, what a request needs, the Temporal UI. */
  summarize(info, credential) {
    const parts = [`${this.count} agent${this.count === 1 ? "" : "s"}`];
    if (credential.enabled) parts.push(credential.description);
    info.replaceChildren(parts.join(" · "));
    if (this.config.temporalUiUrl) {
      info.append(
        " · ",
        element("a", { href: this.config.temporalUiUrl, target: "_blank", rel: "noopener" }, "Temporal UI"),
      );
    }
  }

  endpoint(name) {
    return this.find(name)?.endpoint || `/agents/${encodeURIComponent(name)}`;
  }

  /** The task's workflow in the Temporal UI (the workflow id is the task id), or null. */
  temporalHref(taskId) {
    const base = this.config.temporalUiUrl;
    if (!base) return null;
    const namespace = encodeURIComponent(this.config.temporalNamespace || "default");
    return `${base.replace(/\/+$/, "")}/namespaces/${namespace}/workflows/${encodeURIComponent(taskId)}`;
  }
}
