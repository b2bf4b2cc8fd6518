// The simulated payment provider's card fields (DESIGN §13), standing for Stripe Elements:
// the card goes from the browser to the provider's tokenizer, and only the token it answers
// is posted to the portal. The fields have no name: the portal's form never carries them.
(function () {
  "use strict";
  document.querySelectorAll("[data-card-fields]").forEach((fieldset) => {
    const form = fieldset.closest("form");
    const inputs = fieldset.querySelector("[data-card-inputs]");
    const error = fieldset.querySelector("[data-card-error]");
    const tokenInput = form.querySelector("input[name=card_token]");
    const savedCard = form.querySelector("input[name=use_saved_card]");
    inputs.hidden = false;
    fieldset.querySelector("[data-card-needs-script]").hidden = true;

    const card = (name) => fieldset.querySelector(`[data-card=${name}]`);
    const showError = (message) => {
      error.textContent = message;
      error.hidden = false;
    };

    form.addEventListener("submit", async (event) => {
      if (tokenInput.value || (savedCard && savedCard.checked)) return;
      event.preventDefault();
      const body = new URLSearchParams();
      ["number", "exp_month", "exp_year", "cvc"].forEach((name) => body.set(name, card(name).value));
      let answer;
      try {
        const response = await fetch(fieldset.dataset.tokenizeUrl, {method: "POST", body});
        answer = await response.json();
      } catch (failure) {
        showError(fieldset.dataset.unreachable || "Le prestataire de paiement ne répond pas.");
        return;
      }
      if (!answer.token) {
        showError(answer.message);
        return;
      }
      tokenInput.value = answer.token;
      ["number", "exp_month", "exp_year", "cvc"].forEach((name) => { card(name).value = ""; });
      form.submit();
    });
  });
})();
