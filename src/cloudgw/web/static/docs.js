// The API reference, rendered from /openapi.json by this origin's own code (no CDN).
"use strict";

function text(tag, content, className) {
  const element = document.createElement(tag);
  element.textContent = content;
  if (className) element.className = className;
  return element;
}

function schemaName(schema) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.type === "array" && schema.items) return `array of ${schemaName(schema.items)}`;
  if (schema.anyOf) return schema.anyOf.map(schemaName).join(" | ");
  return schema.type || "";
}

function operation(path, method, op) {
  const section = document.createElement("section");
  section.className = "operation";
  section.dataset.path = path;
  const title = document.createElement("h3");
  title.append(text("span", method.toUpperCase(), `method ${method}`), text("code", ` ${path}`));
  section.append(title, text("p", op.summary || ""));
  const params = (op.parameters || []).map((p) => `${p.name} (${p.in}${p.required ? ", required" : ""}): ${schemaName(p.schema)}`);
  if (params.length) {
    const list = document.createElement("ul");
    params.forEach((p) => list.append(text("li", p)));
    section.append(text("h4", "parameters"), list);
  }
  const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  if (body) section.append(text("p", `body: ${schemaName(body.schema)}`));
  const responses = Object.entries(op.responses || {}).map(([code, r]) => `${code} ${r.description || ""}`);
  section.append(text("p", `responses: ${responses.join("; ")}`, "responses"));
  return section;
}

async function main() {
  const root = document.getElementById("operations");
  const spec = await (await fetch("/openapi.json")).json();
  root.textContent = "";
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) root.append(operation(path, method, op));
  }
  document.getElementById("filter").addEventListener("input", (event) => {
    const wanted = event.target.value.toLowerCase();
    for (const section of root.children) section.hidden = !section.dataset.path.toLowerCase().includes(wanted);
  });
}

main();
