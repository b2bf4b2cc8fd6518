// The confirm-cancel dialog (DESIGN §9). Without JavaScript the "Annuler l'abonnement" link
// leads to the confirmation page; with it, the same recap opens in a native modal <dialog>.
(function () {
  "use strict";
  if (typeof HTMLDialogElement !== "function") return;

  // What Tab can reach: not the form's hidden CSRF input, nor anything disabled or not rendered.
  const focusable = (dialog) =>
    Array.from(dialog.querySelectorAll(
      "a[href], button, select, textarea, input:not([type=hidden]), [tabindex]:not([tabindex='-1'])"
    )).filter((el) => !el.disabled && el.getClientRects().length > 0);

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
      if (!items.length) return;
      const first = items[0];
      const last = items[items.length - 1];
      const index = items.indexOf(document.activeElement);
      // index -1: focus is on the dialog itself (a click on its text), not on a control.
      if (event.shiftKey && index <= 0) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && index === items.length - 1) {
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
