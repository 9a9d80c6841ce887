// Keeps the inbox current: asks /inbox.json every few seconds and rebuilds the rows.
// Values are set with textContent only, never parsed as HTML.
(function () {
  "use strict";
  var table = document.getElementById("inbox");
  if (!table) { return; }
  var url = table.getAttribute("data-poll-url");
  var every = parseInt(table.getAttribute("data-poll-ms"), 10) || 10000;
  var status = document.getElementById("inbox-status");

  function cell(row, text, cls) {
    var td = document.createElement("td");
    if (cls) { td.className = cls; }
    td.textContent = text;
    row.appendChild(td);
    return td;
  }

  function render(items) {
    var body = document.createElement("tbody");
    items.forEach(function (item) {
      var row = document.createElement("tr");
      if (item.overdue) { row.className = "overdue"; }
      cell(row, item.due, "due");
      var risk = document.createElement("span");
      risk.className = "risk risk-" + item.risk;
      risk.textContent = item.risk;
      cell(row, "").appendChild(risk);
      var what = cell(row, "");
      var link = document.createElement("a");
      link.href = item.url;
      link.textContent = item.summary;
      what.appendChild(link);
      var sub = document.createElement("div");
      sub.className = "muted small";
      sub.textContent = item.tool + " · " + item.approval_id;
      what.appendChild(sub);
      cell(row, item.agent);
      cell(row, item.required_role);
      cell(row, item.deadline_text, "small nowrap");
      body.appendChild(row);
    });
    if (!items.length) {
      var empty = document.createElement("tr");
      empty.className = "empty";
      var td = cell(empty, "Nothing waiting for you.");
      td.colSpan = 6;
      body.appendChild(empty);
    }
    table.replaceChild(body, table.tBodies[0]);
    if (status) { status.textContent = items.length + " waiting · updates automatically"; }
  }

  // Runs waiting for a system that is down: a section shown only while there are some.
  var parked = document.getElementById("parked");

  function renderParked(runs) {
    if (!parked || !runs) { return; }
    var table = parked.querySelector("table");
    var body = document.createElement("tbody");
    runs.forEach(function (run) {
      var row = document.createElement("tr");
      var strong = document.createElement("strong");
      strong.textContent = run.system;
      cell(row, "").appendChild(strong);
      cell(row, run.retry ? run.retry_text + " (" + run.retry + ")" : run.retry_text,
        "small nowrap");
      var link = document.createElement("a");
      link.href = run.url;
      link.textContent = run.run_id;
      cell(row, "").appendChild(link);
      cell(row, run.agent);
      cell(row, run.reason || "", "small");
      body.appendChild(row);
    });
    table.replaceChild(body, table.tBodies[0]);
    parked.hidden = !runs.length;
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 401) { window.location.assign("/login"); return null; }
        return response.ok ? response.json() : null;
      })
      .then(function (data) { if (data) { render(data.items); renderParked(data.parked); } })
      .catch(function () { if (status) { status.textContent = "offline · retrying"; } })
      .then(function () { window.setTimeout(poll, every); });
  }

  window.setTimeout(poll, every);
})();
