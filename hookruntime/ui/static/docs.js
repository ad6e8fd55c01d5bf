// The API reference: reads /openapi.json and renders each operation with a "try it"
// form. Text from the document is set with textContent, never parsed as HTML.
(function () {
  "use strict";
  var root = document.getElementById("operations");
  var keyInput = document.getElementById("docs-key");
  // Where the API is mounted ("" at the root): the document and every request live under it.
  var base = root.getAttribute("data-base") || "";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    return node;
  }

  function resolve(doc, schema) {
    if (schema && schema.$ref && schema.$ref.indexOf("#/") === 0) {
      return schema.$ref.slice(2).split("/").reduce(function (o, k) { return o && o[k]; }, doc);
    }
    return schema;
  }

  function example(doc, schema, depth) {
    schema = resolve(doc, schema) || {};
    if (depth > 4) { return null; }
    if (schema.example !== undefined) { return schema.example; }
    if (schema.type === "object" || schema.properties) {
      var out = {};
      (schema.required || Object.keys(schema.properties || {})).forEach(function (name) {
        out[name] = example(doc, (schema.properties || {})[name], depth + 1);
      });
      return out;
    }
    if (schema.type === "array") { return []; }
    if (schema.type === "integer" || schema.type === "number") { return 0; }
    if (schema.type === "boolean") { return false; }
    if (schema.enum) { return schema.enum[0]; }
    return schema.type === "string" ? "" : null;
  }

  function operation(doc, path, method, op) {
    var card = el("details", { "class": "card operation", "data-path": path, "data-method": method });
    var summary = el("summary");
    summary.appendChild(el("strong", { "class": "method" }, method.toUpperCase()));
    summary.appendChild(el("code", {}, " " + path + " "));
    summary.appendChild(el("span", { "class": "hint" }, op.summary || ""));
    card.appendChild(summary);
    if (op.description) { card.appendChild(el("p", {}, op.description)); }

    var form = el("form", { "class": "try" });
    var params = (op.parameters || []).map(function (p) { return resolve(doc, p); });
    (path.match(/\{[^}]+\}/g) || []).forEach(function (braced) {
      var name = braced.slice(1, -1);
      if (!params.some(function (p) { return p.name === name; })) { params.push({ name: name, "in": "path" }); }
    });
    params.forEach(function (p) {
      var label = el("label", {}, p.name + " (" + p["in"] + ")" + (p.description ? ": " + p.description : ""));
      label.appendChild(el("input", { name: "param:" + p["in"] + ":" + p.name }));
      form.appendChild(label);
    });
    var body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
    if (body) {
      var label = el("label", {}, "JSON body");
      var area = el("textarea", { name: "body", rows: "6", spellcheck: "false" });
      area.value = JSON.stringify(example(doc, body.schema, 0), null, 2);
      label.appendChild(area);
      form.appendChild(label);
    }
    var codes = Object.keys(op.responses || {}).join(", ");
    if (codes) { form.appendChild(el("p", { "class": "hint" }, "Answers: " + codes)); }
    form.appendChild(el("button", { type: "submit" }, "Try it"));
    var output = el("pre", { "class": "wire body result", hidden: "" });
    form.appendChild(output);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      send(form, path, method, output);
    });
    card.appendChild(form);
    return card;
  }

  function send(form, path, method, output) {
    var url = base + path, query = [];
    Array.prototype.forEach.call(form.querySelectorAll("input[name^='param:']"), function (input) {
      var parts = input.name.split(":"), where = parts[1], name = parts.slice(2).join(":");
      if (where === "path") { url = url.replace("{" + name + "}", encodeURIComponent(input.value)); }
      else if (where === "query" && input.value !== "") { query.push(encodeURIComponent(name) + "=" + encodeURIComponent(input.value)); }
    });
    if (query.length) { url += "?" + query.join("&"); }
    var headers = {};
    if (keyInput.value) { headers.Authorization = "Bearer " + keyInput.value.trim(); }
    var area = form.querySelector("textarea[name=body]");
    var init = { method: method.toUpperCase(), headers: headers, credentials: "omit" };
    if (area && area.value.trim()) { headers["Content-Type"] = "application/json"; init.body = area.value; }
    output.hidden = false;
    output.textContent = "…";
    fetch(url, init).then(function (response) {
      return response.text().then(function (text) {
        var shown = text;
        try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
        output.textContent = response.status + " " + response.statusText + "\n" + shown;
      });
    }).catch(function (error) { output.textContent = "Request failed: " + error; });
  }

  fetch(base + "/openapi.json", { credentials: "omit" }).then(function (r) { return r.json(); }).then(function (doc) {
    root.textContent = "";
    var info = doc.info || {};
    root.appendChild(el("p", { "class": "hint" }, (info.title || "API") + " " + (info.version || "") + " · OpenAPI " + (doc.openapi || "")));
    Object.keys(doc.paths || {}).forEach(function (path) {
      var methods = doc.paths[path];
      ["get", "post", "put", "patch", "delete"].forEach(function (method) {
        if (methods[method]) { root.appendChild(operation(doc, path, method, methods[method])); }
      });
    });
    root.setAttribute("data-ready", "true");
  }).catch(function (error) { root.textContent = "Could not read " + base + "/openapi.json: " + error; });
})();
