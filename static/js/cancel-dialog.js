// The confirm-cancel dialog (DESIGN §9). Without JavaScript the "Annuler l'abonnement" link
// leads to the confirmation page; with it, the same recap opens in a native modal <dialog>.
(function () {
  "use strict";
  if (typeof HTMLDialogElement !== "function") return;

  const focusable = (dialog) =>
    Array.from(dialog.querySelectorAll("a[href], button, select, textarea, input"))
      .filter((el) => !el.disabled);

  document.addEventListener("click", (event) => {
    const opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      const dialog = document.getElementById(opener.dataset.openDialog);
      if (!dialog) return;
      event.preventDefault();
      dialog.opener = opener;
      dialog.showModal();
      return;
    }
    const closer = event.target.closest("[data-close-dialog]");
    if (closer) closer.closest("dialog").close();
  });

  document.querySelectorAll("dialog.cancel-dialog").forEach((dialog) => {
    dialog.addEventListener("close", () => {
      dialog.querySelector("form").reset();
      if (dialog.opener) dialog.opener.focus();
    });
    // Keep Tab and Shift+Tab inside the dialog.
    dialog.addEventListener("keydown", (event) => {
      if (event.key !== "Tab") return;
      const items = focusable(dialog);
      const first = items[0];
      const last = items[items.length - 1];
      if (event.shiftKey && document.activeElement === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && document.activeElement === last) {
        event.preventDefault();
        first.focus();
      }
    });
    // One click, one request: a second click while the first is on its way does nothing.
    dialog.querySelector("form").addEventListener("submit", (event) => {
      const button = event.target.querySelector("button[type=submit]");
      if (button.dataset.sent) {
        event.preventDefault();
        return;
      }
      button.dataset.sent = "1";
      button.setAttribute("aria-disabled", "true");
    });
  });
})();
