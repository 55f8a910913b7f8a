// Building DOM nodes: text goes in as text (never as HTML), so nothing a server or a user typed can inject
// markup.

/** A `tag` element with `className` and, when given, `text` as its text content. */
export function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}
