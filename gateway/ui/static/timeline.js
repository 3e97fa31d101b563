// The pieces of a task's timeline: a turn (the user's message, then what happened) and an artifact, whose
// text grows chunk by chunk.

import { element } from "./dom.js";
import { otherParts, textOf } from "./parts.js";

export class ArtifactView {
  constructor(artifact) {
    this.id = artifact.artifactId;
    this.name = element("span", { class: "who" }, artifact.name || "Artifact");
    this.text = element("div", { class: "artifact-text", "data-testid": "artifact-text" });
    this.parts = element("div", { class: "artifact-parts" });
    this.root = element(
      "section",
      { class: "artifact", "data-testid": "artifact", "data-artifact-id": this.id, "aria-busy": "true" },
      this.name,
      this.text,
      this.parts,
    );
  }

  get textContent() {
    return this.text.textContent;
  }

  add(artifact, append) {
    if (!append) {
      this.text.replaceChildren();
      this.parts.replaceChildren();
    }
    if (artifact.name) this.name.textContent = artifact.name;
    // A text node per chunk: the text grows without re-laying out what is already there.
    const text = textOf(artifact.parts);
    if (text) this.text.append(document.createTextNode(text));
    this.parts.append(...otherParts(artifact.parts));
  }

  done() {
    this.root.setAttribute("aria-busy", "false");
  }
}

export class Turn {
  constructor() {
    this.user = null;
    this.ended = false;
    this.userSlot = element("div", { class: "user-slot" });
    this.artifactViews = [];
    this.root = element("li", { class: "turn", "data-testid": "turn" }, this.userSlot);
  }

  append(node) {
    this.root.append(node);
  }

  setUser(message) {
    if (this.user) return;
    this.user = message;
    this.userSlot.replaceChildren(
      element(
        "div",
        { class: "message user", "data-testid": "user-message" },
        element("span", { class: "who" }, "You"),
        textOf(message.parts),
        ...otherParts(message.parts),
      ),
    );
  }
}
