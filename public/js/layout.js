// The sidebar: a drawer at phone width that the header button opens.

import { ui } from "./dom.js";

export function initLayout() {
  ui.sidebarToggle.addEventListener("click", () => {
    const open = ui.sidebarToggle.getAttribute("aria-expanded") !== "true";
    ui.sidebarToggle.setAttribute("aria-expanded", String(open));
    ui.chatScreen.classList.toggle("sidebar-open", open);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeSidebar();
  });
}

export function closeSidebar() {
  ui.sidebarToggle.setAttribute("aria-expanded", "false");
  ui.chatScreen.classList.remove("sidebar-open");
}
