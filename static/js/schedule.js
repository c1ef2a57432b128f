// The weekly schedule grid of a Multiselection: 7 days x 96 quarter hours, each cell bound to a
// menu or to none. Paint with the mouse (press, drag a rectangle over days and hours, release)
// or with the keyboard (arrows move, Space/Enter paints, Shift+arrows paint while moving; one
// cell is in the tab order: roving tabindex). Saving posts the painted cells as JSON (without
// JavaScript the form would post nothing to save); the server turns them into periods.

const SLOTS = 96;
const DAYS = 7;

const configElement = document.getElementById("schedule-config");
const table = document.querySelector("table.schedule-grid");
if (configElement && table) setUp(table, JSON.parse(configElement.textContent));

function setUp(table, config) {
  const box = table.closest(".grid-box");
  const form = document.getElementById("schedule-form");
  const status = form.querySelector(".schedule-status");
  const cells = []; // cells[day][slot] -> <td>
  const state = []; // state[day][slot] -> menu id ("" for none)
  for (let day = 0; day < DAYS; day++) {
    cells.push(new Array(SLOTS));
    state.push(new Array(SLOTS).fill(""));
  }
  for (const td of table.querySelectorAll('td[role="gridcell"]')) {
    const day = Number(td.dataset.day);
    const slot = Number(td.dataset.slot);
    cells[day][slot] = td;
    state[day][slot] = td.dataset.menu || "";
  }
  let dirty = false;

  const brush = () => {
    const checked = document.querySelector('input[name="brush"]:checked');
    return checked ? checked.value : "";
  };
  const position = (td) => [Number(td.dataset.day), Number(td.dataset.slot)];
  const clamp = (value, low, high) => Math.max(low, Math.min(high, value));

  // Show the menu of one cell: fill colour and accessible name.
  function show(day, slot, menu) {
    const td = cells[day][slot];
    const info = config.menus[menu];
    td.dataset.menu = menu;
    td.style.background = info ? info.colour : "";
    td.setAttribute("aria-label", `${td.dataset.when}: ${info ? info.name : config.labels.none}`);
  }

  // The first cell of each stretch of one menu shows the menu's name.
  function labelColumn(day) {
    for (let slot = 0; slot < SLOTS; slot++) {
      const menu = cells[day][slot].dataset.menu;
      const starts = menu && (slot === 0 || cells[day][slot - 1].dataset.menu !== menu);
      cells[day][slot].textContent = starts ? config.menus[menu].name : "";
    }
  }

  function markDirty() {
    if (!dirty) {
      dirty = true;
      status.textContent = config.labels.unsaved;
      status.classList.remove("error", "saved");
    }
  }

  // Paint the rectangle between two cells with `menu` (in state, then on screen).
  function paintRectangle([d1, s1], [d2, s2], menu) {
    const [dayFrom, dayTo] = [Math.min(d1, d2), Math.max(d1, d2)];
    const [slotFrom, slotTo] = [Math.min(s1, s2), Math.max(s1, s2)];
    for (let day = dayFrom; day <= dayTo; day++) {
      for (let slot = slotFrom; slot <= slotTo; slot++) {
        state[day][slot] = menu;
        show(day, slot, menu);
      }
      labelColumn(day);
    }
    markDirty();
  }

  // --- keyboard: a roving tabindex over the cells ---------------------------------------
  function focusCell(td, scroll = true) {
    for (const other of table.querySelectorAll('td[tabindex="0"]')) other.tabIndex = -1;
    td.tabIndex = 0;
    td.focus({ preventScroll: !scroll });
  }

  const MOVES = {
    ArrowUp: [0, -1],
    ArrowDown: [0, 1],
    ArrowLeft: [-1, 0],
    ArrowRight: [1, 0],
    PageUp: [0, -4],
    PageDown: [0, 4],
  };

  table.addEventListener("keydown", (event) => {
    const td = event.target.closest('td[role="gridcell"]');
    if (!td) return;
    const [day, slot] = position(td);
    let target = null;
    if (event.key in MOVES) {
      const [dd, ds] = MOVES[event.key];
      target = [clamp(day + dd, 0, DAYS - 1), clamp(slot + ds, 0, SLOTS - 1)];
    } else if (event.key === "Home") {
      target = [day, 0];
    } else if (event.key === "End") {
      target = [day, SLOTS - 1];
    } else if (event.key === " " || event.key === "Enter") {
      event.preventDefault();
      paintRectangle([day, slot], [day, slot], brush());
      return;
    } else {
      return;
    }
    event.preventDefault();
    if (event.shiftKey) paintRectangle([day, slot], target, brush());
    focusCell(cells[target[0]][target[1]]);
  });

  // --- mouse (and pen, touch): drag a rectangle ------------------------------------------
  let drag = null; // {anchor, original: state when the drag began, last}

  function preview(to) {
    if (drag.last && drag.last[0] === to[0] && drag.last[1] === to[1]) return;
    const menu = brush();
    const [a, b] = [drag.anchor, to];
    for (let day = 0; day < DAYS; day++) {
      let touched = false;
      for (let slot = 0; slot < SLOTS; slot++) {
        const inside =
          day >= Math.min(a[0], b[0]) && day <= Math.max(a[0], b[0]) &&
          slot >= Math.min(a[1], b[1]) && slot <= Math.max(a[1], b[1]);
        const wanted = inside ? menu : drag.original[day][slot];
        cells[day][slot].classList.toggle("previewing", inside);
        if (cells[day][slot].dataset.menu !== wanted) {
          show(day, slot, wanted);
          touched = true;
        }
      }
      if (touched) labelColumn(day);
    }
    drag.last = to;
  }

  table.addEventListener("pointerdown", (event) => {
    const td = event.target.closest('td[role="gridcell"]');
    if (!td || event.button !== 0) return;
    event.preventDefault();
    focusCell(td, false);
    drag = { anchor: position(td), original: state.map((day) => day.slice()), last: null };
    preview(drag.anchor);
  });

  document.addEventListener("pointermove", (event) => {
    if (!drag) return;
    const rect = box.getBoundingClientRect();
    if (event.clientY < rect.top + 24) box.scrollTop -= 12; // scroll while dragging at an edge
    else if (event.clientY > rect.bottom - 24) box.scrollTop += 12;
    const found = document.elementFromPoint(event.clientX, event.clientY);
    const td = found && found.closest ? found.closest('td[role="gridcell"]') : null;
    if (td && table.contains(td)) preview(position(td));
  });

  document.addEventListener("pointerup", () => {
    if (!drag) return;
    const to = drag.last || drag.anchor;
    const anchor = drag.anchor;
    for (const td of table.querySelectorAll("td.previewing")) td.classList.remove("previewing");
    drag = null;
    paintRectangle(anchor, to, brush());
    focusCell(cells[to[0]][to[1]], false);
  });

  // --- saving: the JSON API of the same URL, so the grid stays as it is ----------------------
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const painted = [];
    for (let day = 0; day < DAYS; day++) {
      for (let slot = 0; slot < SLOTS; slot++) {
        if (state[day][slot]) painted.push([day, slot, Number(state[day][slot])]);
      }
    }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        headers: {
          "Content-Type": "application/json",
          "X-CSRFToken": form.elements.csrfmiddlewaretoken.value,
        },
        credentials: "same-origin",
        body: JSON.stringify({ cells: painted }),
      });
      const answer = await response.json();
      if (response.ok) {
        dirty = false;
        say(config.labels.saved.replace("%d", answer.periods), false);
      } else {
        say(config.labels.failed.replace("%s", answer.error), true);
      }
    } catch (error) {
      say(config.labels.failed.replace("%s", error.message), true);
    }
    button.disabled = false;
  });

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", isError);
    status.classList.toggle("saved", !isError);
  }

  window.addEventListener("beforeunload", (event) => {
    if (dirty) {
      event.preventDefault();
      event.returnValue = config.labels.unsaved;
    }
  });

  // Open the box an hour before the first painted quarter hour (07:00 when nothing is).
  let first = SLOTS;
  for (let day = 0; day < DAYS; day++) {
    const slot = state[day].findIndex((menu) => menu);
    if (slot >= 0) first = Math.min(first, slot);
  }
  if (first === SLOTS) first = 32;
  const row = table.tBodies[0].rows[Math.max(0, first - 4)];
  box.scrollTop = row.offsetTop - table.tHead.offsetHeight;
}
