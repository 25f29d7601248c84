/* What the Radix components leave to the page. Loaded in the <head> of every page
   (tender_dashboard_reflex.py); no framework, no state of its own beyond the two below. */

/* Dialogs give focus back to the control that opened them (RETURN_FOCUS in
   components/layout.py). Radix only does that for its own Dialog.Trigger, and these dialogs are
   opened by the server after a row's button was pressed, so remember the last control that had
   focus outside any dialog. */
let focusBeforeDialog = null;
document.addEventListener("focusin", (event) => {
  const target = event.target;
  const inDialog = '[role="dialog"], [role="alertdialog"], [data-radix-focus-guard]';
  if (target instanceof HTMLElement && !target.closest(inDialog)) {
    focusBeforeDialog = target;
  }
});
window.returnFocusAfterDialog = () => {
  if (focusBeforeDialog && focusBeforeDialog.isConnected) focusBeforeDialog.focus();
};

/* On a narrow screen a table scrolls sideways inside its box (data_table in
   components/layout.py). Mark each box whose table is wider than it (data-overflow) and that
   has columns hidden to the right (data-more): dashboard.css then shows the "scroll" hint and
   a shadow along the action column. Re-marked after any change to the page, a resize or a
   scroll, once per burst of them (a timer, not requestAnimationFrame, which a hidden or
   headless page may hold back). */
function markTables() {
  for (const box of document.querySelectorAll(".table-box")) {
    const scroller = box.querySelector(".rt-ScrollAreaViewport");
    if (!scroller) continue;
    const hidden = scroller.scrollWidth - scroller.clientWidth;
    box.dataset.overflow = String(hidden > 1);
    box.dataset.more = String(hidden - scroller.scrollLeft > 1);
  }
}
let markTimer = null;
function scheduleMarkTables() {
  if (markTimer !== null) return;
  markTimer = setTimeout(() => {
    markTimer = null;
    markTables();
  }, 30);
}
window.addEventListener("resize", scheduleMarkTables);
document.addEventListener("scroll", scheduleMarkTables, true); // capture: a box's own scroll too
new MutationObserver(scheduleMarkTables).observe(document.documentElement, {
  childList: true,
  subtree: true,
  characterData: true,
});
