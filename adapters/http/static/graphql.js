// The GraphQL page of ReelPulse: a query, its variables and headers, POSTed to /graphql.
// Self-contained (no CDN: ReelPulse works offline); the API key is shared with the dashboard.
"use strict";
const KEY_STORAGE = "reelpulse.apiKey";
const $ = (id) => document.getElementById(id);
const KEY_HOW = "the dev key `reelpulse serve` printed, or `reelpulse keys create --role admin`";
$("key").value = localStorage.getItem(KEY_STORAGE) || "";

const INTROSPECTION = `{ __schema { queryType { name } types { name kind description
  fields { name args { name type { name kind ofType { name kind } } } type { name kind ofType { name kind } } } } } }`;

async function run(query, variables) {
  const key = $("key").value.trim();
  localStorage.setItem(KEY_STORAGE, key);
  const headers = { "content-type": "application/json" };
  if (key) headers.Authorization = "Bearer " + key;
  const token = $("token").value.trim();
  if (token) headers["X-Consistency-Token"] = token;
  $("status").textContent = "running...";
  const started = performance.now();
  try {
    const response = await fetch("/graphql", {
      method: "POST", headers, body: JSON.stringify({ query, variables }),
    });
    const text = await response.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
    $("result").textContent = shown;
    const took = `${response.status} in ${Math.round(performance.now() - started)} ms`;
    $("status").textContent = response.status === 401 || response.status === 403
      ? `${took}: ${key ? "this API key is not accepted here" : "an API key is needed"}; ${KEY_HOW}`
      : took;
    return text;
  } catch (e) {
    $("status").textContent = "failed: " + e;
    return null;
  }
}

function runQuery() {
  let variables = {};
  try {
    variables = JSON.parse($("variables").value || "{}");
  } catch (e) {
    $("status").textContent = "variables are not valid JSON: " + e.message;
    return;
  }
  run($("query").value, variables);
}

async function listTypes() {
  const text = await run(INTROSPECTION, {});
  if (!text) return;
  try {
    const types = JSON.parse(text).data.__schema.types.filter((t) => !t.name.startsWith("__"));
    const typeName = (t) => (t ? t.name || (t.ofType && t.ofType.name) || t.kind : "?");
    $("result").textContent = types.map((t) => {
      const fields = (t.fields || []).map((f) => {
        const args = f.args.length ? `(${f.args.map((a) => a.name + ": " + typeName(a.type)).join(", ")})` : "";
        return `  ${f.name}${args}: ${typeName(f.type)}`;
      });
      return [`${t.kind.toLowerCase()} ${t.name}`, ...fields].join("\n");
    }).join("\n\n");
  } catch (e) { /* the raw answer (an error) is shown already */ }
}

$("run").addEventListener("click", runQuery);
$("headers").addEventListener("submit", (e) => { e.preventDefault(); runQuery(); });  // Enter in a field
$("schema").addEventListener("click", listTypes);
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) runQuery();
});
