// Drag and drop for ordered lists (a hunt group's members), on top of Up/Down buttons that
// work without it. A <tbody data-reorder="URL"> holds rows <tr data-member="ID"> with a
// .drag-handle; dropping a row POSTs order=ID,ID,... to URL through htmx, which swaps in the
// list the server sends back. Keyboard users keep the buttons: after a swap the focus goes
// back to the button they pressed (or its pair when that one is now disabled).
(function () {
  "use strict";
  if (!("draggable" in document.createElement("span"))) return;
  document.documentElement.classList.add("reorder-ready");

  var dragging = null;
  var before = "";

  function order(body) {
    return Array.prototype.map.call(body.querySelectorAll("tr[data-member]"), function (row) {
      return row.dataset.member;
    }).join(",");
  }

  // Only the handle starts a drag, so text and inputs in the row stay usable.
  document.addEventListener("mousedown", function (event) {
    var handle = event.target.closest && event.target.closest("[data-reorder] .drag-handle");
    if (handle) handle.closest("tr").draggable = true;
  });
  document.addEventListener("mouseup", function () {
    document.querySelectorAll("[data-reorder] tr[draggable=true]").forEach(function (row) {
      if (row !== dragging) row.draggable = false;
    });
  });

  document.addEventListener("dragstart", function (event) {
    var row = event.target.closest && event.target.closest("[data-reorder] tr[data-member]");
    if (!row || !row.draggable) return;
    dragging = row;
    before = order(row.parentNode);
    row.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", row.dataset.member);
  });

  document.addEventListener("dragover", function (event) {
    if (!dragging) return;
    var row = event.target.closest && event.target.closest("tr[data-member]");
    if (!row || row.parentNode !== dragging.parentNode) return;
    event.preventDefault();
    if (row === dragging) return;
    var box = row.getBoundingClientRect();
    var after = event.clientY > box.top + box.height / 2;
    row.parentNode.insertBefore(dragging, after ? row.nextSibling : row);
  });

  document.addEventListener("drop", function (event) {
    if (dragging) event.preventDefault();
  });

  document.addEventListener("dragend", function () {
    if (!dragging) return;
    var row = dragging;
    var body = row.parentNode;
    dragging = null;
    row.draggable = false;
    row.classList.remove("dragging");
    var now = order(body);
    if (now === before) return;
    htmx.ajax("POST", body.dataset.reorder, {
      source: body,
      target: "#" + body.closest("section").id,
      swap: "outerHTML",
      values: { order: now },
    });
  });

  // Focus after a swap: htmx puts it back on an element with the same id; a button that is
  // now disabled (Up on the first line) hands it to its pair, and a removed row to the heading.
  var focused = null;
  var swapped = null;
  document.addEventListener("htmx:beforeRequest", function (event) {
    var active = document.activeElement;
    focused = active && active.id ? active.id : null;
    swapped = event.detail.target ? event.detail.target.id : null;
  });
  document.addEventListener("htmx:afterSettle", function () {
    var section = swapped && document.getElementById(swapped);
    if (!section || document.activeElement !== document.body) return;
    var element = focused && document.getElementById(focused);
    if (element && element.disabled && element.dataset.instead) {
      element = document.getElementById(element.dataset.instead);
    }
    if (!element || element.disabled) element = section.querySelector("[tabindex='-1']");
    if (element) element.focus();
  });
})();
