// Building DOM nodes without innerHTML: every value shown comes from the network, so it goes in as text.

/**
 * A new element: `attributes` become attributes (`dataset`, `hidden`, and `on*` handlers are set as
 * properties), `children` are nodes or strings (added as text); null and false children are skipped.
 */
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name === "hidden") node.hidden = Boolean(value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** A `<time>` for an ISO timestamp, shown as local wall-clock time. */
export function timeElement(iso) {
  const when = iso ? new Date(iso) : new Date();
  const valid = !Number.isNaN(when.getTime());
  return element(
    "time",
    { datetime: valid ? when.toISOString() : null },
    valid ? when.toLocaleTimeString() : "",
  );
}
